"""The indexing worker: claim outbox rows, apply them to the search backend, settle tasks.

A batch is claimed with FOR UPDATE SKIP LOCKED inside a transaction that stays open while
the backend applies it; rows are deleted and tasks settled in that same transaction. A
worker killed at any point rolls back: its rows return to the queue for another worker.
An outbox row is a chunk of up to `queries.OUTBOX_CHUNK` documents of one write.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from sqlalchemy import Connection, Engine

from docuseek import collections
from docuseek import queries as Q
from docuseek.files import process as files_process
from docuseek.metrics import (
    BATCH_DURATION,
    BATCH_ERRORS,
    BATCH_SIZE,
    DOCUMENTS_FAILED,
    DOCUMENTS_INDEXED,
)
from docuseek.schema import Collection
from docuseek.search.base import BackendUnavailable, IndexOp, SearchBackend
from docuseek.search.ops import OpBuilder
from docuseek.settings import Settings

log = structlog.get_logger("docuseek.worker")
BACKOFF_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class OutboxRow:
    id: int
    collection_id: int
    doc_ids: list[str]
    versions: list[int]
    op: str
    task_id: int | None
    attempts: int

    def documents(self) -> Iterator[tuple[tuple[int, str], int]]:
        """((collection id, document id), version) of each document of the chunk."""
        for doc_id, version in zip(self.doc_ids, self.versions, strict=True):
            yield (self.collection_id, doc_id), version


@dataclass
class BatchOutcome:
    claimed: int = 0
    failed_docs: dict[tuple[int, str], str] = field(default_factory=dict)
    retried: bool = False


class Worker:
    def __init__(
        self,
        engine: Engine,
        backend: SearchBackend,
        settings: Settings,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.ops = OpBuilder(backend)
        self.settings = settings
        self.stop_event = stop_event or threading.Event()
        self.wake = threading.Event()  # set by an outbox notification or by stop()
        # When a batch first found the backend down (None: it answered the last batch).
        self.unavailable_since: float | None = None

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    def idle(self, seconds: float) -> None:
        """Sleep until new work is announced, the worker stops, or `seconds` pass (a
        missed notification costs at most one poll interval)."""
        self.wake.wait(seconds)
        self.wake.clear()

    def run(self, *, until_empty: bool = False) -> None:
        """Process batches until stopped (or, with until_empty, until the queue is empty)."""
        log.info("worker started", backend=self.backend.name, batch=self.settings.worker_batch_size)
        idle_sleep = self.settings.worker_poll_interval
        while not self.stop_event.is_set():
            try:
                outcome = self.run_batch()
            except Exception as exc:  # keep the loop alive: the database may be restarting
                log.error("batch failed", error=str(exc))
                BATCH_ERRORS.labels(reason=type(exc).__name__).inc()
                self.stop_event.wait(min(5.0, idle_sleep * 10))
                continue
            if outcome.claimed == 0:
                if until_empty and self.queue_depth() == 0:
                    return  # rows waiting out a backoff still count: keep going until done
                self.idle(idle_sleep)
            elif outcome.retried:
                self.stop_event.wait(idle_sleep)
        log.info("worker stopped")

    def queue_depth(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(Q.QUEUE_STATS).one()[0])

    # -- one batch ---------------------------------------------------------------------------

    def run_batch(self) -> BatchOutcome:
        with self.engine.begin() as conn:
            rows = self._claim(conn)
            if not rows:
                return BatchOutcome()
            started = time.perf_counter()
            self._mark_processing(rows)
            outcome = BatchOutcome(claimed=len(rows))
            try:
                self._apply(conn, rows, outcome)
            except BackendUnavailable as exc:
                # The engine is down: not the documents' fault, so no attempt is counted.
                log.warning("search backend unavailable; batch will retry", error=str(exc))
                BATCH_ERRORS.labels(reason="backend_unavailable").inc()
                self._retry(conn, rows, str(exc), count_attempt=False)
                outcome.retried = True
                return outcome
            except Exception as exc:
                log.exception("batch failed", rows=len(rows))
                BATCH_ERRORS.labels(reason=type(exc).__name__).inc()
                self._retry(conn, rows, f"{type(exc).__name__}: {exc}", count_attempt=True)
                outcome.retried = True
                return outcome
            self._settle(conn, rows, outcome.failed_docs)
            self.unavailable_since = None
            BATCH_SIZE.observe(sum(len(r.doc_ids) for r in rows))
            BATCH_DURATION.observe(time.perf_counter() - started)
            return outcome

    def _claim(self, conn: Connection) -> list[OutboxRow]:
        """Lock the oldest available chunks, up to `worker_batch_size` documents (and at
        least one chunk). A row is locked when the cursor fetches it, so the worker fetches
        as many as would fit if each were as large as the largest seen so far: the first
        fetch cannot overshoot; a later one only when larger chunks follow smaller ones."""
        batch = self.settings.worker_batch_size
        conn.execute(Q.DECLARE_CLAIM)
        rows: list[OutboxRow] = []
        docs, want = 0, max(1, batch // Q.OUTBOX_CHUNK)
        while True:
            fetched = [OutboxRow(*r) for r in conn.execute(Q.fetch_claim(want))]
            rows += fetched
            docs += sum(len(r.doc_ids) for r in fetched)
            if len(fetched) < want or docs >= batch:
                break  # the queue has no more available rows, or the batch is full
            want = (batch - docs) // max(len(r.doc_ids) for r in rows)
            if want == 0:
                break  # no chunk as large as the largest one seen would fit
        conn.execute(Q.CLOSE_CLAIM)
        return rows

    def _mark_processing(self, rows: Sequence[OutboxRow]) -> None:
        task_ids = sorted({r.task_id for r in rows if r.task_id is not None})
        if task_ids:
            # Its own short transaction so clients see `processing` while the batch runs.
            with self.engine.begin() as conn:
                conn.execute(Q.ASYNC_COMMIT)  # a progress hint: no need to wait for the disk
                conn.execute(Q.MARK_TASKS_PROCESSING, {"ids": task_ids})

    def _apply(self, conn: Connection, rows: Sequence[OutboxRow], outcome: BatchOutcome) -> None:
        # One pass over the chunks: each document's newest queued version, and the keys.
        newest_row_version: dict[tuple[int, str], int] = {}
        for r in rows:
            for key, version in r.documents():
                newest_row_version[key] = max(newest_row_version.get(key, 0), version)
        keys = sorted(newest_row_version)
        # Uploaded files' text goes into their stored documents first (files/process.py).
        outcome.failed_docs.update(files_process.extract_pending(self.engine, keys, self.settings))
        current = {
            (cid, doc_id): (int(version), body)
            for cid, doc_id, version, body in conn.execute(
                self.ops.select_current,
                {"cids": [k[0] for k in keys], "ids": [k[1] for k in keys]},
            )
        }
        ops_by_collection: dict[int, list[IndexOp]] = defaultdict(list)
        for key in keys:
            if key in current:
                version, body = current[key]
                ops_by_collection[key[0]].append(self.ops.upsert(key[1], version, body))
            else:  # gone from PostgreSQL: make sure it is gone from the index
                ops_by_collection[key[0]].append(self.ops.delete(key[1], newest_row_version[key]))

        for collection_id, ops in ops_by_collection.items():
            collection = collections.load_by_id(conn, collection_id)
            if collection is None:
                continue  # deleted meanwhile; its rows are gone by cascade
            failed = self._apply_to_generations(conn, collection, ops)
            for doc_id, reason in failed.items():
                outcome.failed_docs[(collection_id, doc_id)] = reason
            for op in ops:
                if (collection_id, op.doc_id) not in outcome.failed_docs:
                    DOCUMENTS_INDEXED.labels(op="delete" if op.is_delete else "upsert").inc()

    def _apply_to_generations(
        self, conn: Connection, collection: Collection, ops: list[IndexOp]
    ) -> dict[str, str]:
        failed: dict[str, str] = {}

        def apply(target: Collection) -> None:
            for generation in target.write_generations:
                failed.update(self.backend.index_batch(target, generation, ops).failed)

        def recreate(reloaded: Collection) -> None:
            # No switch happened: the engine lost the index (a wiped cluster). Recreate it
            # so writes land; `docuseek reconcile --repair` refills it.
            log.error("index missing; recreating it", collection=collection.name)
            for generation in reloaded.write_generations:
                self.backend.ensure_collection(reloaded, generation)

        # A reindex switched generations under us: reload and apply again.
        collections.retry_on_missing_generation(
            collection, apply, lambda: collections.load_by_id(conn, collection.id), recreate
        )
        return failed

    def _retry(
        self, conn: Connection, rows: Sequence[OutboxRow], error: str, *, count_attempt: bool
    ) -> None:
        max_attempts = self.settings.worker_max_attempts
        exhausted = [r for r in rows if count_attempt and r.attempts + 1 >= max_attempts]
        again = [r for r in rows if r not in exhausted]
        if again:
            if count_attempt:
                exponent = max(r.attempts for r in again)
                delay = self.settings.worker_backoff_base * 2**exponent
            else:
                # Backend down: wait as long again as it has been down. Doubling per failed
                # batch reached the cap within seconds (every claim of a queue of many
                # rows is a batch), so an engine back after 4 s waited a minute for them.
                now = time.monotonic()
                if self.unavailable_since is None:
                    self.unavailable_since = now
                delay = max(self.settings.worker_backoff_base, now - self.unavailable_since)
            delay = min(BACKOFF_CAP_SECONDS, delay)
            conn.execute(
                Q.RETRY_OUTBOX_ROWS,
                {
                    "ids": [r.id for r in again],
                    "error": error[:2000],
                    "delay": delay,
                    "increment": 1 if count_attempt else 0,
                },
            )
        if exhausted:
            failed = {
                key: f"gave up after {max_attempts} attempts: {error}"
                for r in exhausted
                for key, _ in r.documents()
            }
            self._settle(conn, exhausted, failed)

    def _settle(
        self,
        conn: Connection,
        rows: Sequence[OutboxRow],
        failed_docs: dict[tuple[int, str], str],
    ) -> None:
        conn.execute(Q.DELETE_OUTBOX_ROWS, {"ids": [r.id for r in rows]})
        per_task: dict[int, list[Any]] = {}
        for r in rows:
            if r.task_id is None:
                continue
            entry = per_task.setdefault(r.task_id, [0, 0, None])
            for key, _ in r.documents():
                reason = failed_docs.get(key)
                if reason is None:
                    entry[0] += 1
                else:
                    entry[1] += 1
                    entry[2] = entry[2] or f"document {key[1]!r}: {reason}"
        if failed_docs:
            DOCUMENTS_FAILED.inc(len(failed_docs))
        if per_task:
            task_ids = sorted(per_task)
            conn.execute(
                Q.SETTLE_TASKS,
                {
                    "task_ids": task_ids,
                    "done": [per_task[t][0] for t in task_ids],
                    "failed": [per_task[t][1] for t in task_ids],
                    "errors": [per_task[t][2] for t in task_ids],
                },
            )


class WorkerPool:
    """`WORKER_CONCURRENCY` workers on threads with one stop signal. Most of a batch's time
    is spent waiting for PostgreSQL (or OpenSearch); a second worker keeps both busy."""

    def __init__(self, engine: Engine, backend: SearchBackend, settings: Settings) -> None:
        self.engine = engine
        self.stop_event = threading.Event()
        self.workers = [
            Worker(engine, backend, settings, self.stop_event)
            for _ in range(settings.worker_concurrency)
        ]

    def stop(self) -> None:
        self.stop_event.set()
        for worker in self.workers:
            worker.wake.set()

    def start(self, *, until_empty: bool = False) -> list[threading.Thread]:
        listener = threading.Thread(target=self._listen, name="outbox-listener", daemon=True)
        listener.start()
        threads = [
            threading.Thread(
                target=w.run, kwargs={"until_empty": until_empty}, name=f"worker-{i}", daemon=True
            )
            for i, w in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def run(self, *, until_empty: bool = False) -> None:
        threads = self.start(until_empty=until_empty)
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)  # short joins: the main thread must see signals

    def _listen(self) -> None:
        """LISTEN for new outbox rows and wake the workers, so a write is picked up at
        once instead of at the next poll. Reconnects while the database is away."""
        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {Q.OUTBOX_CHANNEL}")
                    while not self.stop_event.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            for worker in self.workers:
                                worker.wake.set()
            except psycopg.Error as exc:
                if self.stop_event.is_set():
                    return  # the server went away because everything is shutting down
                log.warning("outbox listener reconnecting", error=str(exc))
                self.stop_event.wait(2.0)
