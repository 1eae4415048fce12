"""Reindex as a task: the api process rebuilds a collection's index on a background thread
and reports its progress in the task's details (received: documents to copy, indexed:
copied so far)."""

from __future__ import annotations

import threading
import time

import structlog
from fastapi import APIRouter, status
from sqlalchemy import Engine

from docuseek import collections
from docuseek import queries as Q
from docuseek.api.deps import AdminKey, BackendDep, EngineDep
from docuseek.api.routes.documents import TaskAccepted
from docuseek.errors import DocuseekError
from docuseek.reindex import ReindexLock, reindex, try_lock
from docuseek.search.base import SearchBackend

TASK_REINDEX = "reindex"
PROGRESS_EVERY_SECONDS = 0.5  # a task row update per copied batch would be a write per 1,000

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/collections/{name}/reindex", tags=["collections"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_reindex(name: str, engine: EngineDep, backend: BackendDep, _: AdminKey) -> TaskAccepted:
    """Rebuild the collection's index from PostgreSQL into a new generation, then switch
    to it; searches keep working throughout. Follow it with GET /tasks/{task_id}."""
    with engine.connect() as conn:
        collection = collections.load(conn, name)
    # Taken here and handed to the thread: a second request that comes before the thread
    # starts finds it held (409) instead of starting a run that fails.
    lock = try_lock(engine, collection)
    try:
        with engine.begin() as conn:
            collections.load_for_write(conn, name)
            conn.execute(Q.FAIL_INTERRUPTED_REINDEX_TASKS, {"name": name})
            task_id = int(
                conn.execute(
                    Q.INSERT_TASK,
                    {"type": TASK_REINDEX, "collection": collection.name, "received": 0},
                ).scalar_one()
            )
        thread = threading.Thread(
            target=_run,
            args=(engine, backend, name, task_id, lock),
            name=f"reindex-{name}",
            daemon=True,
        )
        thread.start()
    except BaseException:
        lock.release()
        raise
    return TaskAccepted(task_id=task_id, status="enqueued", received=0)


def _run(
    engine: Engine, backend: SearchBackend, name: str, task_id: int, lock: ReindexLock
) -> None:
    try:
        _run_holding(engine, backend, name, task_id, lock)
    finally:
        lock.release()


def _run_holding(
    engine: Engine, backend: SearchBackend, name: str, task_id: int, lock: ReindexLock
) -> None:
    with engine.begin() as conn:
        conn.execute(Q.START_REINDEX_TASK, {"id": task_id})
    last = 0.0

    def progress(copied: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS or copied >= total:
            last = now
            with engine.begin() as conn:
                conn.execute(
                    Q.REINDEX_TASK_PROGRESS, {"id": task_id, "copied": copied, "total": total}
                )

    outcome, error = "succeeded", None
    try:
        summary = reindex(engine, backend, name, progress=progress, held=lock)
        progress(summary.documents, summary.documents)
    except DocuseekError as exc:
        outcome, error = "failed", exc.message
    except Exception as exc:  # the thread has no caller to raise to: the task says it
        log.exception("reindex failed", collection=name, task_id=task_id)
        outcome, error = "failed", f"{type(exc).__name__}: {exc}"
    with engine.begin() as conn:
        conn.execute(Q.FINISH_REINDEX_TASK, {"id": task_id, "status": outcome, "error": error})
