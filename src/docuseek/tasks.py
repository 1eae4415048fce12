"""Task read model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from docuseek import queries as Q
from docuseek.errors import NotFound


def as_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "collection": row.collection,
        "status": row.status,
        "error": row.error,
        "details": {
            "received": row.received,
            "indexed": row.indexed,
            "failed": row.failed,
            "pending": row.pending,
        },
        "enqueued_at": row.enqueued_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


def get(conn: Connection, task_id: int) -> dict[str, Any]:
    row = conn.execute(Q.SELECT_TASK, {"id": task_id}).first()
    if row is None:
        raise missing(task_id)
    return as_dict(row)


def missing(task_id: int) -> NotFound:
    return NotFound(f"task {task_id} does not exist")


def list_tasks(
    conn: Connection,
    *,
    status: str | None,
    collection: str | None,
    visible: list[str] | None,
    before: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = conn.execute(
        Q.LIST_TASKS,
        {
            "status": status,
            "collection": collection,
            "collections": visible,
            "before": before,
            "limit": limit,
        },
    )
    return [as_dict(r) for r in rows]
