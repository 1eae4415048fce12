"""A real Docuseek server for the client tests: uvicorn on a free loopback port, serving
the app over a test database, with the worker pool `docuseek serve` runs beside it."""

from __future__ import annotations

import threading
import time

import uvicorn
from sqlalchemy import Engine

from docuseek.api.app import create_app
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from docuseek.worker import WorkerPool
from tests.helpers import free_port


class LiveServer:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        backend: SearchBackend,
        *,
        worker: bool = True,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(settings, engine, backend)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.pool = WorkerPool(engine, backend, settings) if worker else None
        self.worker_threads: list[threading.Thread] = []

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        if self.pool is not None:
            self.worker_threads = self.pool.start()
        return self

    def stop(self) -> None:
        """Graceful: requests in flight finish, then the port refuses connections."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
        if self.pool is not None:
            self.pool.stop()
            for thread in self.worker_threads:
                thread.join(timeout=30)
