"""The OpenAPI document: summaries, descriptions, examples and the real error responses.

Kept apart from the routes so that the reference reads as one table; `build_openapi`
applies it to FastAPI's generated document and replaces FastAPI's `{"detail": [...]}`
validation schema, which this API never returns, with `ErrorResponse`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from docuseek import __version__
from docuseek.api.openapi_extra import EXTRA_OPERATIONS


class ErrorBody(BaseModel):
    code: str = Field(
        description="Stable machine-readable code: bad_request, malformed_body, unauthorized,"
        " forbidden, not_found, conflict, payload_too_large, invalid_input,"
        " search_unavailable, database_unavailable, method_not_allowed, too_many_requests,"
        " internal"
    )
    message: str = Field(description="What was wrong, in words, naming the field or value")
    details: Any | None = Field(
        None,
        description="Where it was wrong when there is more to say: for a 422, a list of"
        ' {"loc": [...], "msg": ...} naming each bad parameter, field or document',
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorBody


ERRORS: dict[int, tuple[str, str, str]] = {
    400: (
        "Malformed body: not JSON (or NDJSON), or not the expected shape",
        "malformed_body",
        "body is not valid JSON: Expecting value at line 1 column 1",
    ),
    401: ("Missing or invalid API key", "unauthorized", "invalid API key"),
    403: (
        "The key lacks the scope, or may not use this collection",
        "forbidden",
        "this key lacks the 'admin' scope",
    ),
    404: (
        "No such collection, document, task or key",
        "not_found",
        "collection 'books' does not exist",
    ),
    409: (
        "Conflicts with the current state (a change the schema cannot take, or a"
        " concurrent change): nothing was stored",
        "conflict",
        "collection 'books' was deleted and created meanwhile; try again",
    ),
    429: (
        "Too many failed authentications from this client address; wait Retry-After seconds",
        "too_many_requests",
        "too many failed authentications; retry in 12 seconds",
    ),
    413: (
        "Request body larger than DOCUSEEK_MAX_BODY_BYTES",
        "payload_too_large",
        "request body is larger than the limit of 52428800 bytes"
        " (DOCUSEEK_MAX_BODY_BYTES); split the batch",
    ),
    415: (
        "A Content-Encoding other than gzip, deflate or none",
        "unsupported_media_type",
        "Content-Encoding 'br' is not supported: send gzip, deflate or an uncompressed body",
    ),
    422: (
        "Invalid input: a parameter, field or document that fails validation (details"
        " names each); nothing was stored",
        "invalid_input",
        "body.fields.title.type: Input should be 'text', 'keyword', 'integer', 'float',"
        " 'boolean' or 'date'",
    ),
    503: (
        "The search backend or the collection's index is unavailable; writes are still"
        " accepted and queued",
        "search_unavailable",
        "the search backend is unavailable: connection refused; writes are still accepted"
        " and queued",
    ),
}

_BOOK = {"id": "1", "title": "The lazy fox", "body": "jumps", "section": "animals", "year": 2001}
_SCHEMA = {
    "fields": {
        "title": {"type": "text", "weight": "A"},
        "body": {"type": "text"},
        "section": {"type": "keyword", "facet": True},
        "year": {"type": "integer"},
    }
}
_COLLECTION = {
    "name": "books",
    **_SCHEMA,
    "index_phrases": True,
    "documents": 1,
    "pending_tasks": 0,
    "generation": 1,
    "reindexing": False,
    "created_at": "2026-01-01T12:00:00Z",
    "updated_at": "2026-01-01T12:00:00Z",
}
_TASK = {
    "id": 1,
    "type": "upsert",
    "collection": "books",
    "status": "succeeded",
    "error": None,
    "details": {"received": 1, "indexed": 1, "failed": 0, "pending": 0},
    "enqueued_at": "2026-01-01T12:00:00Z",
    "started_at": "2026-01-01T12:00:00.1Z",
    "finished_at": "2026-01-01T12:00:00.2Z",
}
_ACCEPTED = {"task_id": 1, "status": "enqueued", "received": 1}
_KEY = {
    "id": 2,
    "name": "frontend",
    "prefix": "ds_3f9a",
    "scopes": ["search"],
    "collections": ["books"],
    "created_at": "2026-01-01T12:00:00Z",
}
_SEARCH = {
    "hits": [
        {
            "id": "1",
            "score": 0.61,
            "document": _BOOK,
            "highlights": {"title": ["The <mark>lazy</mark> fox"]},
        }
    ],
    "total": 1,
    "total_relation": "eq",
    "ranking": "exact",
    "facets": {"section": [{"value": "animals", "count": 1}]},
    "next_cursor": None,
    "took_ms": 1.7,
}
_AUTH = (401, 403, 429)


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str
    errors: tuple[int, ...]
    request: Any = None
    response: Any = None
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)


# Every route of the API: a test fails for a route missing here.
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation(
        "Liveness",
        "200 while the process serves requests. No key needed.",
        (422,),
        response={"status": "ok"},
    ),
    ("GET", "/readyz"): Operation(
        "Readiness",
        "200 when both the database and the search backend answer; 503 (with the same body"
        " shape, naming the one that does not) otherwise. No key needed.",
        (422,),
        response={"status": "ready", "checks": {"database": "ok", "search": "ok"}},
        extra={
            503: {
                "description": "The database or the search backend is unreachable",
                "content": {
                    "application/json": {
                        "example": {
                            "status": "unavailable",
                            "checks": {"database": "ok", "search": "unreachable: timeout"},
                        }
                    }
                },
            }
        },
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics",
        "Request, search, queue and worker metrics in Prometheus' text format. No key needed.",
        (422,),
    ),
    ("POST", "/keys"): Operation(
        "Create an API key",
        "Admin scope. Returns the new key's secret in `key`: it is shown only in this response"
        " (the server keeps a SHA-256 hash). `scopes`: `search` (search and read documents),"
        " `write` (also write documents and follow tasks), `admin` (everything);"
        ' `collections`: names the key may use, or `["*"]`.',
        (400, *_AUTH, 413, 422),
        request={"name": "frontend", "scopes": ["search"], "collections": ["books"]},
        response={**_KEY, "key": "ds_3f9a0c1e5b7d4a2f8e6c9b1d3a5f7e0c"},
    ),
    ("GET", "/keys"): Operation(
        "List API keys",
        "Admin scope. Every key's name, prefix, scopes and collections; never a secret.",
        (*_AUTH, 422),
        response=[_KEY],
    ),
    ("DELETE", "/keys/{key_id}"): Operation(
        "Revoke an API key",
        "Admin scope. The key stops working at once. 204 on success.",
        (*_AUTH, 404, 422),
    ),
    ("PUT", "/collections/{name}"): Operation(
        "Create or update a collection",
        "Admin scope. 201 when created, 200 when updated. Field types: `text` (with `weight`"
        " A-D), `keyword` (a string or a list of strings), `integer`, `float`, `boolean`,"
        " `date` (ISO 8601); `facet: true` on non-text fields. An update may add fields; a"
        " change the existing index cannot take is a 409; a 404 when the collection is deleted"
        " while it is being updated.",
        (400, *_AUTH, 404, 409, 413, 422, 503),
        request=_SCHEMA,
        response=_COLLECTION,
    ),
    ("GET", "/collections"): Operation(
        "List collections",
        "Any key. The collections the key may use, each with its schema, document count and"
        " pending tasks.",
        (401, 422),
        response=[_COLLECTION],
    ),
    ("GET", "/collections/{name}"): Operation(
        "Describe a collection",
        "Any key allowed on the collection. Schema, document count, pending tasks and index"
        " generation.",
        (*_AUTH, 404, 422),
        response=_COLLECTION,
    ),
    ("DELETE", "/collections/{name}"): Operation(
        "Delete a collection",
        "Admin scope. Deletes the collection, its documents, its tasks and its index. 204.",
        (*_AUTH, 404, 409, 422, 503),
    ),
    ("POST", "/collections/{name}/documents"): Operation(
        "Add or replace documents",
        "Write scope. A JSON array of objects, or NDJSON (`Content-Type:"
        " application/x-ndjson`); each needs a string `id` and is upserted. The body may be"
        " compressed (`Content-Encoding: gzip` or `deflate`). All or nothing: one bad document"
        " rejects the batch with a 422 naming its position and field. The 202 means the"
        " documents are durable; follow `task_id` on `GET /tasks/{id}` until they are"
        " searchable.",
        (400, *_AUTH, 404, 413, 415, 422),
        request=[_BOOK],
        response=_ACCEPTED,
    ),
    ("GET", "/collections/{name}/documents/{doc_id}"): Operation(
        "Read a document",
        "Search scope. The stored document, its version and when it was last written.",
        (*_AUTH, 404, 422),
        response={
            "id": "1",
            "version": 7,
            "updated_at": "2026-01-01T12:00:00Z",
            "document": _BOOK,
        },
    ),
    ("DELETE", "/collections/{name}/documents/{doc_id}"): Operation(
        "Delete a document",
        "Write scope. 202 with a task; the document leaves search results when it succeeds.",
        (*_AUTH, 404, 422),
        response={**_ACCEPTED, "received": 1},
    ),
    ("GET", "/tasks/{task_id}"): Operation(
        "Follow a task",
        "Any key allowed on the task's collection. `status`: `enqueued`, `processing`, then"
        " `succeeded` or `failed`, with counts in `details`.",
        (*_AUTH, 404, 422),
        response=_TASK,
    ),
    ("GET", "/tasks"): Operation(
        "List tasks",
        "Any key: the tasks of the collections it may use, newest first, filtered by `status`"
        " and `collection`. Page with `before=next_before`.",
        (*_AUTH, 422),
        response={"results": [_TASK], "next_before": None},
    ),
    ("GET", "/collections/{name}/search"): Operation(
        "Search (query parameters)",
        'Search scope. `q` in web-search syntax (words, `"phrases"`, `-exclusion`, `OR`;'
        " empty lists documents in sort order); `filter` (repeatable): `field:value`,"
        " `field:v1,v2`, `field>=v`, `field:lo..hi`; `facets=a,b`; `sort=year:desc,_id`;"
        " page with `cursor=next_cursor`. Highlights wrap matches in `<mark>`; everything"
        " else in them is escaped text.",
        (*_AUTH, 404, 422, 503),
        response=_SEARCH,
    ),
    ("POST", "/collections/{name}/search"): Operation(
        "Search (JSON body)",
        "Search scope. The same search as the GET form, with `filter` as an object:"
        ' `{"section": ["a", "b"], "year": {"gte": 2000, "lt": 2010}}`.',
        (400, *_AUTH, 404, 413, 422, 503),
        request={
            "q": "lazy fox",
            "filter": {"year": {"gte": 2000}},
            "facets": ["section"],
            "sort": ["_score"],
            "limit": 10,
        },
        response=_SEARCH,
    ),
}
OPERATIONS.update({key: Operation(**entry) for key, entry in EXTRA_OPERATIONS.items()})

_METHODS = ("get", "put", "post", "delete", "patch")


def _error_response(status: int) -> dict[str, Any]:
    description, code, message = ERRORS[status]
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"},
                "example": {"error": {"code": code, "message": message}},
            }
        },
    }


def _set_example(content: dict[str, Any], example: Any) -> None:
    for media in content.values():
        media["example"] = example


def document_operation(operation: dict[str, Any], doc: Operation) -> None:
    operation["summary"] = doc.summary
    operation["description"] = doc.description
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if doc.request is not None and "requestBody" in operation:
        content = operation["requestBody"].get("content", {})
        json_media = content.get("application/json")
        if json_media is not None:
            json_media["example"] = doc.request
        form_media = content.get("multipart/form-data")
        if form_media is not None:
            form_media["example"] = doc.request
        ndjson_media = content.get("application/x-ndjson")
        if ndjson_media is not None and isinstance(doc.request, list):
            ndjson_media["example"] = "".join(json.dumps(d) + "\n" for d in doc.request)
    if doc.response is not None:
        for code, response in responses.items():
            if code.startswith("2") and "content" in response:
                _set_example(response["content"], doc.response)
    for status in doc.errors:
        responses[str(status)] = _error_response(status)
    for status, extra in doc.extra.items():
        responses[str(status)] = extra


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with OPERATIONS applied; cached on the app like FastAPI's own."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=__version__,
        description=app.description,
        routes=app.routes,
    )
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            # FastAPI's default validation response: this API's 422 is an ErrorResponse.
            operation.get("responses", {}).pop("422", None)
            doc = OPERATIONS.get((method.upper(), path))
            if doc is not None:
                document_operation(operation, doc)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs", {}))
    components["ErrorResponse"] = error_schema
    app.openapi_schema = schema
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
