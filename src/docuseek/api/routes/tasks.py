"""Tasks: the progress of writes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from docuseek import tasks
from docuseek.api.deps import AnyKey, EngineDep
from docuseek.schema import INT64

router = APIRouter(prefix="/tasks", tags=["tasks"])

TaskStatus = Literal["enqueued", "processing", "succeeded", "failed"]


@router.get("/{task_id}")
def get_task(
    task_id: Annotated[int, Path(ge=-INT64, lt=INT64)], engine: EngineDep, principal: AnyKey
) -> dict[str, Any]:
    with engine.connect() as conn:
        task = tasks.get(conn, task_id)
    if not principal.allows_collection(task["collection"]):
        # The same answer as for a missing task: ids are sequential, and a 403 would name
        # (or confirm) other collections to a key limited to its own.
        raise tasks.missing(task_id)
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
    if collection is not None and not principal.allows_collection(collection):
        # As for a collection without tasks: a 403 would confirm that the collection exists.
        return {"results": [], "next_before": None}
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
