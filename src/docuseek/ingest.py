"""The write path: a batch of documents, its task and its outbox rows in one transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Result

from docuseek import collections, storable
from docuseek import queries as Q
from docuseek.errors import InvalidInput, NotFound
from docuseek.schema import Collection, DocumentError, validate_document

TASK_UPSERT = "documents_upsert"
TASK_DELETE = "documents_delete"
TASK_MERGE = "documents_merge"


@dataclass(frozen=True)
class Enqueued:
    task_id: int
    status: str
    received: int
    queued: int


def canonical_json(doc: dict[str, Any]) -> str:
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def prepare(collection: Collection, docs: Iterable[Any]) -> tuple[list[str], list[str], list[str]]:
    """Validate every document (all or nothing) → ids, canonical bodies, content hashes.

    A repeated id within one batch keeps its last occurrence, as a sequence of upserts would.
    """
    errors: list[dict[str, Any]] = []
    by_id: dict[str, tuple[str, str]] = {}
    for position, raw in enumerate(docs):
        try:
            doc = validate_document(collection, position, raw)
            by_id[doc["id"]] = stored_form(position, doc)
        except DocumentError as exc:
            errors.append(exc.as_detail())
            if len(errors) >= 20:
                break
    if errors:
        first = errors[0]
        where = f"document {first['position']}" + (
            f", field {first['field']!r}" if first["field"] else ""
        )
        raise InvalidInput(
            f"{where}: {first['message']} (the batch was rejected; nothing was stored)",
            details=errors,
        )
    # In id order: concurrent batches then lock the same documents in the same order and
    # wait for each other instead of deadlocking (a 500).
    ids = sorted(by_id)
    bodies = [by_id[i][0] for i in ids]
    hashes = [by_id[i][1] for i in ids]
    return ids, bodies, hashes


def stored_form(position: int, doc: dict[str, Any]) -> tuple[str, str]:
    """The document's canonical JSON and its SHA-256, or a DocumentError saying which
    part of it PostgreSQL cannot store (storable.py). The whole-body checks cost little;
    the walks that name the part run only when one of them trips."""
    try:
        body: str | None = canonical_json(doc)
    except (ValueError, RecursionError):  # an infinite number; hundreds of levels deep
        body = None
    # The brackets bound the depth from above: only a document with many is walked.
    many = body is None or body.count("[") + body.count("{") > storable.MAX_DEPTH
    if many and storable.too_deep(doc):
        raise DocumentError(position, None, f"nested deeper than {storable.MAX_DEPTH} levels")
    stored: tuple[str, str] | None = None
    if body is not None:
        try:
            stored = body, hashlib.sha256(body.encode()).hexdigest()
        except UnicodeEncodeError:  # a lone surrogate
            pass
        else:
            if "\\u0000" not in body:  # how json spells a NUL
                return stored
    found = storable.find_problem(doc)
    if found is None:
        if stored is not None:  # a false alarm: the text "\\u0000" itself
            return stored
        raise DocumentError(position, None, "cannot be stored as JSON")
    path, problem = found
    field = path[0] if isinstance(path[0], str) else None  # a document is an object
    message = problem if len(path) == 1 else f"at {storable.format_path(path)!r}: {problem}"
    raise DocumentError(position, field, message)


def rows_json(ids: list[str], bodies: list[str], hashes: list[str]) -> str:
    """The batch as one JSON array parameter, spliced from the canonical bodies we already
    have (psycopg's quoting of a text[] of JSON costs more than the insert itself)."""
    rows = (
        f'{{"id":{json.dumps(i)},"hash":"{h}","body":{b}}}'
        for i, b, h in zip(ids, bodies, hashes, strict=True)
    )
    return "[" + ",".join(rows) + "]"


def upsert_documents(engine: Engine, collection_name: str, docs: list[Any]) -> Enqueued:
    if not docs:
        raise InvalidInput("the batch is empty: send at least one document")
    with engine.begin() as conn:
        collection = collections.load_for_write(conn, collection_name)
        return _upsert(conn, collection, docs, TASK_UPSERT)


def merge_documents(
    engine: Engine, collection_name: str, patches: list[Any], *, must_exist: bool
) -> Enqueued:
    """Merge each patch's fields into its stored document (a document without one is
    created from the patch, or, with `must_exist`, is a 404). The merge is jsonb `||` in
    PostgreSQL under the rows' locks; the results are validated like any write and go
    through the same upsert, task and outbox, in the same transaction."""
    # A missing collection is a 404 before anything about the body, as for other writes.
    collections.load_cached(engine, collection_name)
    if not patches:
        raise InvalidInput("the batch is empty: send at least one document")
    problems = [
        {"position": i, "field": "id", "message": "each document needs a non-empty string 'id'"}
        for i, p in enumerate(patches)
        if not isinstance(p, dict) or not isinstance(p.get("id"), str) or not p["id"]
    ]
    if problems:
        first = problems[0]
        raise InvalidInput(
            f"document {first['position']}, field 'id': {first['message']} (the batch was"
            " rejected; nothing was stored)",
            details=problems[:20],
        )
    # Fails with a 422 naming the part before any statement sees text PostgreSQL refuses.
    for position, patch in enumerate(patches):
        try:
            stored_form(position, patch)
        except DocumentError as exc:
            raise InvalidInput(f"document {position}: {exc.message}", [exc.as_detail()]) from None
    with engine.begin() as conn:
        collection = collections.load_for_write(conn, collection_name)
        ids = sorted({p["id"] for p in patches})
        conn.execute(Q.LOCK_DOCUMENTS_FOR_MERGE, {"cid": collection.id, "ids": ids})
        # Repeated ids merge in order, as a sequence of PATCH requests would.
        merged: dict[str, Any] = {}
        order: list[str] = []
        rows = [{"ord": i, "id": p["id"], "patch": p} for i, p in enumerate(patches)]
        for row in conn.execute(
            Q.MERGE_DOCUMENTS, {"cid": collection.id, "patches": json.dumps(rows)}
        ):
            if must_exist and not row.existed:
                raise NotFound(
                    f"document {row.id!r} does not exist in collection {collection.name!r}"
                )
            if row.id in merged:
                merged[row.id] = {**merged[row.id], **patches[row.ord]}
            else:
                merged[row.id] = row.body
                order.append(row.id)
        return _upsert(conn, collection, [merged[i] for i in order], TASK_MERGE)


def _upsert(conn: Any, collection: Collection, docs: list[Any], task_type: str) -> Enqueued:
    ids, bodies, hashes = prepare(collection, docs)
    task_id = conn.execute(
        Q.INSERT_TASK,
        {"type": task_type, "collection": collection.name, "received": len(docs)},
    ).scalar_one()
    changed = queued_ids(
        conn.execute(
            Q.UPSERT_DOCUMENTS,
            {"cid": collection.id, "rows": rows_json(ids, bodies, hashes), "task_id": task_id},
        )
    )
    queued = len(changed)
    if queued < len(ids):
        changed_set = set(changed)
        unchanged = [i for i in ids if i not in changed_set]
        queued += len(
            queued_ids(
                conn.execute(
                    Q.REQUEUE_UNCHANGED_PENDING,
                    {"cid": collection.id, "ids": unchanged, "task_id": task_id},
                )
            )
        )
    return _finish(conn, task_id, len(docs), queued)


def delete_documents(engine: Engine, collection_name: str, ids: list[str]) -> Enqueued:
    with engine.begin() as conn:
        collection = collections.load_for_write(conn, collection_name)
        task_id = conn.execute(
            Q.INSERT_TASK,
            {"type": TASK_DELETE, "collection": collection.name, "received": len(ids)},
        ).scalar_one()
        queued = len(
            queued_ids(
                conn.execute(
                    Q.DELETE_DOCUMENTS, {"cid": collection.id, "ids": ids, "task_id": task_id}
                )
            )
        )
        return _finish(conn, task_id, len(ids), queued)


def queued_ids(result: Result[Any]) -> list[str]:
    """The document ids of the outbox chunks an INSERT … RETURNING doc_ids queued."""
    return [doc_id for chunk in result.scalars() for doc_id in chunk]


def _finish(conn: Any, task_id: int, received: int, queued: int) -> Enqueued:
    # Unchanged documents, and ids repeated within the batch, count as indexed at once.
    conn.execute(Q.FINISH_TASK_ENQUEUE, {"id": task_id, "pending": queued})
    if queued:
        conn.execute(Q.NOTIFY_OUTBOX)
    status = "enqueued" if queued else "succeeded"
    return Enqueued(task_id=task_id, status=status, received=received, queued=queued)
