"""Document files: upload originals (multipart), download them back."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from docuseek import collections
from docuseek.api.deps import (
    DocumentId,
    EngineDep,
    SearchKey,
    SettingsDep,
    WriteKey,
    check_collection,
)
from docuseek.api.routes.documents import TaskAccepted
from docuseek.files import storage
from docuseek.files.upload import read_upload

router = APIRouter(prefix="/collections/{name}", tags=["files"])

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One part per file: PDF, DOCX, ODT, EPUB, HTML,"
                            " Markdown or text, detected from the content.",
                        },
                        "fields": {
                            "type": "string",
                            "description": "Optional JSON array, one object per file in order:"
                            " its `id` (default: the file's SHA-256) and the user's fields.",
                        },
                    },
                }
            }
        },
    }
}


@router.post("/files", status_code=status.HTTP_202_ACCEPTED, openapi_extra=UPLOAD_BODY)
async def upload_files(
    name: str, request: Request, engine: EngineDep, settings: SettingsDep, principal: WriteKey
) -> TaskAccepted:
    """Store each file's original and queue its extraction and indexing; 202 means the
    originals are durable. The task fails a file that cannot be extracted, alone."""
    check_collection(principal, name)
    # A missing collection is a 404 before the body is read, as for other writes.
    await run_in_threadpool(collections.load_cached, engine, name)
    upload = await read_upload(
        request.headers.get("content-type"), request.stream(), settings.max_file_bytes
    )
    try:
        result = await run_in_threadpool(storage.store_upload, engine, name, upload)
    finally:
        upload.close()
    return TaskAccepted(task_id=result.task_id, status=result.status, received=result.received)


class FailedFile(BaseModel):
    id: str
    filename: str | None
    content_type: str
    error: str = Field(description="Why the file could not be extracted, for a person.")
    extractor: str | None = Field(description="Version of the extractor that tried.")


@router.get("/files/failed")
def list_failed_files(
    name: str,
    engine: EngineDep,
    principal: WriteKey,
    after: Annotated[str, Query(max_length=512, description="Last id of the previous page")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[FailedFile]:
    """Documents whose file could not be extracted, by id, with the reason: each is
    stored and searchable by its file fields only, until a new upload replaces it."""
    check_collection(principal, name)
    return [FailedFile(**f) for f in storage.failed_files(engine, name, after, limit)]


@router.get(
    "/documents/{doc_id}/file",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_file(
    name: str, doc_id: DocumentId, engine: EngineDep, principal: SearchKey
) -> Response:
    """The original bytes of a document uploaded as a file, with its detected content type."""
    check_collection(principal, name)
    original = storage.read_original(engine, name, doc_id)
    headers = {}
    if original.filename:
        headers["Content-Disposition"] = (
            f"attachment; filename*=UTF-8''{quote(original.filename, safe='')}"
        )
    return Response(original.data, media_type=original.content_type, headers=headers)
