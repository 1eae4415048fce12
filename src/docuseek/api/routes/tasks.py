"""Tasks: the progress of writes."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from docuseek import tasks
from docuseek.api.deps import AnyKey, EngineDep, check_collection
from docuseek.schema import INT64

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskStatus = Literal["enqueued", "processing", "succeeded", "failed"]


@router.get("/{task_id}")
def get_task(task_id: int, engine: EngineDep, principal: AnyKey) -> dict[str, Any]:
    with engine.connect() as conn:
        task = tasks.get(conn, task_id)
    check_collection(principal, task["collection"])
    return task


@router.get("")
def list_tasks(
    engine: EngineDep,
    principal: AnyKey,
    status: TaskStatus | None = None,
    collection: str | None = None,
    before: int | None = Query(
        None, ge=-INT64, lt=INT64, description="Only tasks with a smaller id (paging)"
    ),
    limit: int = Query(50, ge=1, le=1000),
) -> dict[str, Any]:
    if collection is not None:
        check_collection(principal, collection)
    with engine.connect() as conn:
        results = tasks.list_tasks(
            conn,
            status=status,
            collection=collection,
            visible=principal.visible_collections(),
            before=before,
            limit=limit,
        )
    next_before = results[-1]["id"] if len(results) == limit else None
    return {"results": results, "next_before": next_before}
