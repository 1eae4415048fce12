"""A synchronous, typed Python client for the Docuseek HTTP API (on httpx).

    from docuseek.client import Client
    with Client("http://127.0.0.1:8000", key="dsk_...") as ds:
        hits = ds.search("books", q="lazy fox")["hits"]

Every error response raises `ApiError` with the API's code, message, details and status;
a server that cannot be reached raises `ServerUnreachable`.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, TypedDict, cast
from urllib.parse import quote

import httpx

Scope = Literal["search", "write", "admin"]
TaskStatus = Literal["enqueued", "processing", "succeeded", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})


class ClientError(Exception):
    """Anything the client raises."""


class ApiError(ClientError):
    """An error response: `{"error": {"code", "message", "details"}}` and its status."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        # add_ndjson: the file line of each document of the rejected batch, so that a
        # position or a "line N" in the details can be traced back to the file.
        self.file_lines: list[int] | None = None


class ServerUnreachable(ClientError):
    """The request did not get a response (refused, reset, timed out)."""


class TaskTimeout(ClientError):
    """`wait_for_task` gave up before the task finished."""


class TaskAccepted(TypedDict):
    task_id: int
    status: str
    received: int


class TaskDetails(TypedDict):
    received: int
    indexed: int
    failed: int
    pending: int


class Task(TypedDict):
    id: int
    type: str
    collection: str
    status: TaskStatus
    error: str | None
    details: TaskDetails
    enqueued_at: str
    started_at: str | None
    finished_at: str | None


class TaskList(TypedDict):
    results: list[Task]
    next_before: int | None


class Hit(TypedDict):
    id: str
    score: float | None
    document: dict[str, Any]
    highlights: dict[str, list[str]]


class FacetValue(TypedDict):
    value: Any
    count: int


class SearchResponse(TypedDict):
    hits: list[Hit]
    total: int
    total_relation: Literal["eq", "gte"]
    ranking: Literal["exact", "tiered"]
    facets: dict[str, list[FacetValue]]
    next_cursor: str | None
    took_ms: float


class StoredDocument(TypedDict):
    id: str
    version: int
    updated_at: str
    document: dict[str, Any]


class KeyInfo(TypedDict):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    collections: list[str]
    created_at: str
    expires_at: str | None


class KeyCreated(KeyInfo):
    key: str


@dataclass(frozen=True)
class UploadProgress:
    """Reported after each batch the server acknowledged (202)."""

    documents: int  # acknowledged so far
    batches: int
    bytes_read: int  # of the source file (0 for documents given in memory)
    task_id: int


ProgressCallback = Callable[[UploadProgress], None]


class Client:
    """One connection pool to one Docuseek server; use as a context manager or `close()`."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(
                f"{method} {self._http.base_url}{path}: {type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- collections ---------------------------------------------------------------------

    def put_collection(
        self, name: str, fields: Mapping[str, Any], *, index_phrases: bool | None = None
    ) -> dict[str, Any]:
        """Create the collection, or update its schema (PUT is both)."""
        body: dict[str, Any] = {"fields": dict(fields)}
        if index_phrases is not None:
            body["index_phrases"] = index_phrases
        return cast(dict[str, Any], self._request("PUT", f"/collections/{name}", json=body))

    create_collection = put_collection
    update_collection = put_collection

    def get_collection(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._request("GET", f"/collections/{name}"))

    def list_collections(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._request("GET", "/collections"))

    def delete_collection(self, name: str) -> None:
        self._request("DELETE", f"/collections/{name}")

    def reindex(self, collection: str) -> TaskAccepted:
        """Start a rebuild of the collection's index (admin); follow it with `get_task`."""
        return cast(TaskAccepted, self._request("POST", f"/collections/{collection}/reindex"))

    # -- documents -----------------------------------------------------------------------

    def add_documents(
        self,
        collection: str,
        documents: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = 1000,
        on_progress: ProgressCallback | None = None,
        compress: bool = False,
    ) -> list[TaskAccepted]:
        """Upsert documents in batches of `batch_size`, one request (and task) per batch
        (gzip-compressed with `compress`, for a server across a slow network). A batch the
        server rejects raises ApiError; the batches before it stay stored."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        accepted: list[TaskAccepted] = []
        batch: list[Mapping[str, Any]] = []
        done = 0

        def flush() -> None:
            nonlocal done
            encoded = json.dumps(batch, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body, headers = _batch_body(encoded.encode(), "application/json", compress)
            task = cast(
                TaskAccepted,
                self._request(
                    "POST", f"/collections/{collection}/documents", content=body, headers=headers
                ),
            )
            accepted.append(task)
            done += len(batch)
            batch.clear()
            if on_progress:
                on_progress(UploadProgress(done, len(accepted), 0, task["task_id"]))

        for doc in documents:
            batch.append(doc)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        return accepted

    def add_ndjson(
        self,
        collection: str,
        source: str | Path | IO[bytes],
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 8 * 1024 * 1024,
        on_progress: ProgressCallback | None = None,
        compress: bool = False,
    ) -> list[TaskAccepted]:
        """Stream an NDJSON file (a path or a binary stream) without parsing it here: lines
        go to the server as they are, `batch_size` lines (or `max_batch_bytes`) a request,
        gzip-compressed with `compress`."""
        if isinstance(source, (str, Path)):
            with open(source, "rb") as handle:
                return self.add_ndjson(
                    collection,
                    handle,
                    batch_size=batch_size,
                    max_batch_bytes=max_batch_bytes,
                    on_progress=on_progress,
                    compress=compress,
                )
        accepted: list[TaskAccepted] = []
        lines: list[bytes] = []
        line_numbers: list[int] = []
        size = 0
        read = 0
        done = 0

        def flush() -> None:
            nonlocal size, done
            body, headers = _batch_body(b"".join(lines), "application/x-ndjson", compress)
            try:
                task = cast(
                    TaskAccepted,
                    self._request(
                        "POST",
                        f"/collections/{collection}/documents",
                        content=body,
                        headers=headers,
                    ),
                )
            except ApiError as exc:
                exc.file_lines = list(line_numbers)
                raise
            accepted.append(task)
            done += len(lines)
            lines.clear()
            line_numbers.clear()
            size = 0
            if on_progress:
                on_progress(UploadProgress(done, len(accepted), read, task["task_id"]))

        for line_number, line in enumerate(source, start=1):
            read += len(line)
            if not line.strip():
                continue
            if lines and size + len(line) > max_batch_bytes:
                flush()
            lines.append(line if line.endswith(b"\n") else line + b"\n")
            line_numbers.append(line_number)
            size += len(line)
            if len(lines) >= batch_size:
                flush()
        if lines:
            flush()
        return accepted

    def update_document(
        self, collection: str, doc_id: str, fields: Mapping[str, Any]
    ) -> TaskAccepted:
        """Merge `fields` into the stored document (ApiError 404 when there is none)."""
        return cast(
            TaskAccepted,
            self._request(
                "PATCH",
                f"/collections/{collection}/documents/{_segment(doc_id)}",
                json=dict(fields),
            ),
        )

    def update_documents(self, collection: str, patches: list[Mapping[str, Any]]) -> TaskAccepted:
        """Merge each patch (with its `id`) into its stored document, or store it as it is."""
        return cast(
            TaskAccepted,
            self._request("PATCH", f"/collections/{collection}/documents", json=patches),
        )

    def delete_by_filter(
        self, collection: str, filter: Mapping[str, Any] | list[str]
    ) -> TaskAccepted:
        """Delete the documents the search filter matches, as one task."""
        body = {"filter": filter if isinstance(filter, list) else dict(filter)}
        return cast(
            TaskAccepted,
            self._request("POST", f"/collections/{collection}/documents/delete", json=body),
        )

    def get_document(self, collection: str, doc_id: str) -> StoredDocument:
        return cast(
            StoredDocument,
            self._request("GET", f"/collections/{collection}/documents/{_segment(doc_id)}"),
        )

    def delete_document(self, collection: str, doc_id: str) -> TaskAccepted:
        return cast(
            TaskAccepted,
            self._request("DELETE", f"/collections/{collection}/documents/{_segment(doc_id)}"),
        )

    # -- tasks ---------------------------------------------------------------------------

    def get_task(self, task_id: int) -> Task:
        return cast(Task, self._request("GET", f"/tasks/{task_id}"))

    def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        collection: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> TaskList:
        params = {"status": status, "collection": collection, "before": before, "limit": limit}
        return cast(
            TaskList,
            self._request("GET", "/tasks", params={k: v for k, v in params.items() if v}),
        )

    def wait_for_task(self, task_id: int, *, timeout: float = 60.0, interval: float = 0.1) -> Task:
        """Poll until the task has succeeded or failed (returned either way); TaskTimeout
        after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get_task(task_id)
            if task["status"] in FINISHED:
                return task
            if time.monotonic() >= deadline:
                raise TaskTimeout(
                    f"task {task_id} is still {task['status']} after {timeout} s: {task['details']}"
                )
            time.sleep(interval)

    # -- search --------------------------------------------------------------------------

    def search(
        self,
        collection: str,
        q: str = "",
        *,
        filter: Mapping[str, Any] | None = None,
        facets: list[str] | None = None,
        sort: list[str] | None = None,
        limit: int = 20,
        cursor: str | None = None,
        highlight: bool = True,
    ) -> SearchResponse:
        """One page. `filter` is the JSON form: {"section": ["a"], "year": {"gte": 2000}}."""
        body: dict[str, Any] = {"q": q, "limit": limit, "highlight": highlight}
        if filter:
            body["filter"] = dict(filter)
        if facets:
            body["facets"] = facets
        if sort:
            body["sort"] = sort
        if cursor:
            body["cursor"] = cursor
        return cast(
            SearchResponse, self._request("POST", f"/collections/{collection}/search", json=body)
        )

    def iter_search(
        self,
        collection: str,
        q: str = "",
        *,
        filter: Mapping[str, Any] | None = None,
        sort: list[str] | None = None,
        page_size: int = 100,
        highlight: bool = False,
    ) -> Iterator[Hit]:
        """Every hit, page after page by cursor (keyset paging: nothing is skipped or
        repeated when documents change meanwhile)."""
        cursor: str | None = None
        while True:
            page = self.search(
                collection,
                q,
                filter=filter,
                sort=sort,
                limit=page_size,
                cursor=cursor,
                highlight=highlight,
            )
            yield from page["hits"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def multi_search(self, queries: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Several searches in one request, each `{"collection": ..., "q": ..., ...}`; each
        result is a search response, or `{"status", "error"}` for that query alone."""
        response = self._request("POST", "/multi-search", json={"queries": queries})
        return cast(list[dict[str, Any]], response["results"])

    def facet_values(
        self, collection: str, field: str, prefix: str = "", *, limit: int = 10
    ) -> list[FacetValue]:
        """Values of a facet field starting with `prefix`, most frequent first."""
        response = self._request(
            "GET",
            f"/collections/{collection}/facets/{field}",
            params={"q": prefix, "limit": limit},
        )
        return cast(list[FacetValue], response["values"])

    # -- keys ----------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: list[Scope],
        collections: list[str] | None = None,
        *,
        expires_at: datetime | None = None,
    ) -> KeyCreated:
        body: dict[str, Any] = {"name": name, "scopes": scopes}
        if collections is not None:
            body["collections"] = collections
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        return cast(KeyCreated, self._request("POST", "/keys", json=body))

    def list_keys(self) -> list[KeyInfo]:
        return cast(list[KeyInfo], self._request("GET", "/keys"))

    def revoke_key(self, key_id: int) -> None:
        self._request("DELETE", f"/keys/{key_id}")


def _batch_body(body: bytes, content_type: str, compress: bool) -> tuple[bytes, dict[str, str]]:
    """A batch request's body and headers, gzip-compressed (fastest level: JSON shrinks
    several times over even so) when asked."""
    headers = {"Content-Type": content_type}
    if not compress:
        return body, headers
    return gzip.compress(body, compresslevel=1), {**headers, "Content-Encoding": "gzip"}


def _segment(doc_id: str) -> str:
    """A document id as one path segment: `/`, `%`, `?` and `#` percent-encoded."""
    return quote(doc_id, safe="")


def _api_error(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(
            response.status_code,
            str(error.get("code", "http_error")),
            str(error.get("message", response.reason_phrase)),
            error.get("details"),
        )
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        # Not Docuseek's error body (a proxy in between, say): keep what there is.
        return ApiError(response.status_code, "http_error", response.text[:500] or "no body")
