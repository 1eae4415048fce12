"""Helpers the tests share: constants, the in-process service driver, real worker
processes, waiting and racing. Fixtures live in conftest.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from docuseek.worker import Worker
from tests.conformance.opensearch_target import start_osmem
from tests.ports import free_port

__all__ = [
    "ADMIN_KEY",
    "BOOK_FIELDS",
    "DOCUSEEK_BIN",
    "PgServer",
    "Racer",
    "Service",
    "WorkerProcess",
    "free_port",
    "plan_nodes",
    "wait_for",
]

ADMIN_KEY = "test-admin-key-0123456789"

BOOK_FIELDS: dict[str, Any] = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "section": {"type": "keyword", "facet": True},
    "tags": {"type": "keyword", "facet": True},
    "year": {"type": "integer"},
    "price": {"type": "float"},
    "in_print": {"type": "boolean"},
    "published": {"type": "date"},
}


@dataclass
class PgServer:
    base_url: str  # URL of the `postgres` maintenance database

    def url_for(self, database: str) -> str:
        head, _, query = self.base_url.partition("?")
        head = head.rsplit("/", 1)[0] + "/" + database
        return head + ("?" + query if query else "")


@dataclass
class Service:
    client: TestClient
    engine: Engine
    backend: SearchBackend
    settings: Settings

    def drain(self) -> None:
        """Run a worker until the queue is empty (what `docuseek worker` does, in-process)."""
        Worker(self.engine, self.backend, self.settings).run(until_empty=True)

    def create_collection(
        self, name: str, fields: dict[str, Any], index_phrases: bool | None = None
    ) -> None:
        body: dict[str, Any] = {"fields": fields}
        if index_phrases is not None:
            body["index_phrases"] = index_phrases
        response = self.client.put(f"/collections/{name}", json=body)
        assert response.status_code in (200, 201), response.text

    def add(self, name: str, docs: list[dict[str, Any]]) -> int:
        response = self.client.post(f"/collections/{name}/documents", json=docs)
        assert response.status_code == 202, response.text
        return int(response.json()["task_id"])

    def task(self, task_id: int) -> dict[str, Any]:
        response = self.client.get(f"/tasks/{task_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def search(self, name: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(f"/collections/{name}/search", params=params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


# -- real `docuseek worker` processes ---------------------------------------------------


DOCUSEEK_BIN = str(Path(sys.executable).with_name("docuseek"))


class WorkerProcess:
    def __init__(self, database_url: str, batch: int) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "WORKER_BATCH_SIZE": str(batch),
            "WORKER_POLL_INTERVAL": "0.05",
            "WORKER_METRICS_PORT": str(self.port),
            "WORKER_METRICS_HOST": "127.0.0.1",
            "SEARCH_BACKEND": "postgres",
        }
        self.proc = subprocess.Popen(
            [DOCUSEEK_BIN, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for(lambda: self._healthy(), 30, "worker metrics endpoint")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def applied(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            body = r.read().decode()
        return sum(
            float(m)
            for m in re.findall(r'^docuseek_documents_indexed_total\{op="\w+"\} (\S+)$', body, re.M)
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Racer:
    """A request started on a thread at a chosen moment of another, with `head_start`
    seconds to get through before that one goes on (it may be waiting for a lock)."""

    def __init__(self, request: Callable[[], Any], head_start: float = 1.0) -> None:
        self.response: Any = None
        self.thread = threading.Thread(target=lambda: setattr(self, "response", request()))
        self.thread.start()
        self.thread.join(timeout=head_start)

    def finish(self, timeout: float = 30) -> Any:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the racing request did not finish"
        return self.response


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, depth first."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


class OsmemProcess:
    """One osmem-server on a fixed loopback port that the test can kill, freeze and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = start_osmem(self.port)

    def kill(self) -> None:
        self.server.process.kill()
        self.server.process.wait()

    def restart(self) -> None:
        self.server = start_osmem(self.port)

    def freeze(self) -> None:
        os.kill(self.server.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.server.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.server.process.poll() is None:  # not killed by a test that then failed
            self.thaw()
        self.server.close()
