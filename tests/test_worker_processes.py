"""The worker as real `docuseek worker` processes: concurrency, SIGKILL mid-batch, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

from sqlalchemy import Engine, text

from docuseek.search.postgres.layout import table_name
from tests.helpers import (
    BOOK_FIELDS,
    DOCUSEEK_BIN,
    Service,
    WorkerProcess,
    free_port,
    wait_for,
)

N_DOCS = 12_000
DOCUMENT_BATCH = 2_000


def scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# Documents still queued (an outbox row is a chunk of them).
QUEUED = "SELECT coalesce(sum(cardinality(doc_ids)), 0) FROM outbox"


def enqueue(service: Service, n: int = N_DOCS) -> list[int]:
    service.create_collection("books", BOOK_FIELDS)
    tasks = []
    for start in range(0, n, DOCUMENT_BATCH):
        docs = [
            {"id": f"d{i}", "title": f"title {i}", "body": f"body text number {i}", "year": i}
            for i in range(start, min(n, start + DOCUMENT_BATCH))
        ]
        tasks.append(service.add("books", docs))
    return tasks


def index_matches_database(service: Service) -> None:
    """Every document is in the index exactly once, at its current version."""
    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'books'")).scalar_one()
        from docuseek.collections import load

        table = table_name(load(conn, "books"), 1)
        assert cid
        mismatched = conn.execute(
            text(
                f"SELECT count(*) FROM documents d FULL JOIN {table} i ON i.id = d.id"
                " WHERE d.id IS NULL OR i.id IS NULL OR i.version <> d.version OR NOT i.live"
            )
        ).scalar_one()
    assert mismatched == 0
    assert scalar(service.engine, f"SELECT count(*) FROM {table}") == N_DOCS


def test_two_workers_apply_each_row_once(
    service: Service, database_url: str, workers: list[WorkerProcess]
) -> None:
    workers += [WorkerProcess(database_url, batch=200), WorkerProcess(database_url, batch=200)]
    tasks = enqueue(service)
    wait_for(lambda: scalar(service.engine, QUEUED) == 0, 120, "queue to drain")
    applied = [w.applied() for w in workers]
    # SKIP LOCKED: both took part, and together they applied every row exactly once.
    assert all(a > 0 for a in applied), applied
    assert sum(applied) == N_DOCS
    assert all(service.task(t)["status"] == "succeeded" for t in tasks)
    index_matches_database(service)
    assert [w.stop() for w in workers] == [0, 0]


def test_worker_killed_mid_batch_loses_nothing(
    service: Service, database_url: str, workers: list[WorkerProcess]
) -> None:
    tasks = enqueue(service)
    first = WorkerProcess(database_url, batch=500)
    workers.append(first)

    def mid_batch() -> bool:
        # The worker holds a claim transaction open while it applies a batch.
        done = N_DOCS - scalar(service.engine, QUEUED)
        busy = scalar(
            service.engine,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name"
            " = 'docuseek-worker' AND state IN ('active', 'idle in transaction')",
        )
        return 0 < done < N_DOCS - 1000 and busy > 0

    wait_for(mid_batch, 60, "the worker to be mid-batch")
    first.stop(signal.SIGKILL)
    left = scalar(service.engine, QUEUED)
    assert 0 < left < N_DOCS
    assert any(service.task(t)["status"] != "succeeded" for t in tasks)

    workers.append(WorkerProcess(database_url, batch=500))
    wait_for(lambda: scalar(service.engine, QUEUED) == 0, 120, "queue to drain")
    wait_for(lambda: all(service.task(t)["status"] == "succeeded" for t in tasks), 10, "tasks")
    index_matches_database(service)
    assert sum(service.task(t)["details"]["indexed"] for t in tasks) == N_DOCS


def test_sigterm_finishes_the_batch_and_exits(
    service: Service, database_url: str, workers: list[WorkerProcess]
) -> None:
    enqueue(service)
    worker = WorkerProcess(database_url, batch=1000)
    workers.append(worker)
    wait_for(lambda: scalar(service.engine, QUEUED) < N_DOCS, 60, "first batch")
    assert worker.stop(signal.SIGTERM) == 0
    left = scalar(service.engine, QUEUED)
    # It stopped early, and settled whole batches only: what is gone from the queue is indexed.
    assert left > 0 and left % 1000 == 0
    indexed = scalar(service.engine, "SELECT coalesce(sum(indexed), 0) FROM tasks")
    assert indexed == N_DOCS - left


class DefaultWorker:
    """`docuseek worker` with the default metrics settings, except the port: one free port
    for both processes stands in for the default 9100, which another run may hold."""

    def __init__(self, database_url: str, port: int, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "DOCUSEEK_"))}
        env.update(
            DATABASE_URL=database_url,
            SEARCH_BACKEND="postgres",
            WORKER_BATCH_SIZE="200",
            WORKER_POLL_INTERVAL="0.05",
            WORKER_METRICS_PORT=str(port),
        )
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [DOCUSEEK_BIN, "worker"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def serving(self) -> tuple[str, int] | None:
        assert self.proc.poll() is None, self.output()
        match = re.search(r"metrics server started\s+host=(\S+)\s+port=(\d+)", self.output())
        return (match.group(1), int(match.group(2))) if match else None

    def applied(self, port: int) -> float:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read().decode()
        return sum(
            float(m)
            for m in re.findall(r'^docuseek_documents_indexed_total\{op="\w+"\} (\S+)$', body, re.M)
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.log.close()


def test_two_workers_with_default_settings_share_one_host(
    service: Service, database_url: str, tmp_path: Path
) -> None:
    """The second worker finds the metrics port taken: it serves on the next free one
    (on the loopback interface, by default) instead of dying, and both share the queue."""
    port = free_port()
    first = DefaultWorker(database_url, port, tmp_path / "first.log")
    try:
        wait_for(lambda: first.serving() is not None, 30, "the first worker's metrics server")
        second = DefaultWorker(database_url, port, tmp_path / "second.log")
        try:
            wait_for(lambda: second.serving() is not None, 30, "the second worker's server")
            (host1, port1), (host2, port2) = first.serving(), second.serving()  # type: ignore[misc]
            assert host1 == host2 == "127.0.0.1"
            assert port1 == port and port < port2 < port + 10
            tasks = enqueue(service, 6_000)
            wait_for(lambda: scalar(service.engine, QUEUED) == 0, 120, "queue to drain")
            # Both stayed up, and both claimed batches.
            assert first.proc.poll() is None and second.proc.poll() is None
            applied = [first.applied(port1), second.applied(port2)]
            assert all(a > 0 for a in applied) and sum(applied) == 6_000, applied
            assert all(service.task(t)["status"] == "succeeded" for t in tasks)
        finally:
            assert second.stop() == 0, second.output()
    finally:
        assert first.stop() == 0, first.output()
