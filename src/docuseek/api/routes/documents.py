"""Documents: batch upsert (JSON array or NDJSON), get and delete by id."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import Engine

from docuseek import collections, ingest, payload
from docuseek import queries as Q
from docuseek.api.deps import (
    DocumentId,
    EngineDep,
    SearchKey,
    SettingsDep,
    WriteKey,
    check_collection,
)
from docuseek.errors import NotFound

router = APIRouter(prefix="/collections/{name}/documents", tags=["documents"])


class TaskAccepted(BaseModel):
    task_id: int
    status: str
    received: int


def accepted(result: ingest.Enqueued) -> TaskAccepted:
    return TaskAccepted(task_id=result.task_id, status=result.status, received=result.received)


# A batch of documents: a JSON array or NDJSON.
BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


async def store_batch(
    request: Request, settings: SettingsDep, write: Callable[[list[Any]], ingest.Enqueued]
) -> TaskAccepted:
    """Spool the request's batch (so a large one does not sit in memory), read its documents
    and hand them to `write` on a worker thread."""
    content_type = request.headers.get("content-type")
    decoder = payload.BodyDecoder(request.headers.get("content-encoding"), settings.max_body_bytes)
    with tempfile.SpooledTemporaryFile(max_size=payload.SPOOL_MEMORY_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(decoder.feed(chunk))
        decoder.finish()
        spool.seek(0)

        def store() -> ingest.Enqueued:
            docs = payload.read_documents(spool, content_type, settings.max_batch_documents)
            return write(docs)

        result = await run_in_threadpool(store)
    return accepted(result)


@router.post("", status_code=status.HTTP_202_ACCEPTED, openapi_extra=BATCH_BODY)
async def add_documents(
    name: str, request: Request, engine: EngineDep, settings: SettingsDep, principal: WriteKey
) -> TaskAccepted:
    check_collection(principal, name)
    return await store_batch(
        request, settings, lambda docs: ingest.upsert_documents(engine, name, docs)
    )


def _stored(engine: Engine, name: str, doc_id: str) -> Any:
    with engine.connect() as conn:
        collection = collections.load(conn, name)
        row = conn.execute(Q.SELECT_DOCUMENT, {"cid": collection.id, "id": doc_id}).first()
    if row is None:
        raise NotFound(f"document {doc_id!r} does not exist in collection {name!r}")
    return row


@router.get("/{doc_id}")
def get_document(
    name: str, doc_id: DocumentId, engine: EngineDep, principal: SearchKey
) -> dict[str, Any]:
    check_collection(principal, name)
    row = _stored(engine, name, doc_id)
    return {
        "id": doc_id,
        "version": row.version,
        "updated_at": row.updated_at,
        "document": row.body,
    }


@router.delete("/{doc_id}", status_code=status.HTTP_202_ACCEPTED)
def delete_document(
    name: str, doc_id: DocumentId, engine: EngineDep, principal: WriteKey
) -> TaskAccepted:
    check_collection(principal, name)
    _stored(engine, name, doc_id)
    return accepted(ingest.delete_documents(engine, name, [doc_id]))
