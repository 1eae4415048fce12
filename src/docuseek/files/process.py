"""The worker's part: extract the files of a batch's documents before they are indexed.

The PostgreSQL backend indexes what the `documents` table holds, reading it in its own
transaction, so each file's extracted fields are written back into its stored document and
committed (one short transaction per file) before the batch is applied; OpenSearch then
gets the same body. Work done survives a failed batch: a retry indexes what was extracted
without extracting again. A file that cannot be extracted keeps its upload-time body (its
file fields and the user's), is still indexed with them, and counts as failed in its task
with the reason, which `document_files.error` keeps for every later attempt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, text

from docuseek import collections, ingest
from docuseek import queries as Q
from docuseek.files import storage
from docuseek.files.extract import EXTRACTOR_VERSION, Extracted, ExtractionError
from docuseek.files.sandbox import Limits, extract_in_child
from docuseek.schema import Collection, DocumentError, validate_document
from docuseek.settings import Settings

log = structlog.get_logger("docuseek.files")

_CURRENT_FILES = """
    FROM unnest(CAST(:cids AS bigint[]), CAST(:ids AS text[])) AS k(collection_id, id)
    JOIN document_files df ON df.collection_id = k.collection_id AND df.doc_id = k.id
    JOIN documents d ON d.collection_id = df.collection_id AND d.id = df.doc_id
        AND d.version = df.version
"""
# The batch's documents that are current files: one statement per batch, which finds
# nothing (by primary key) in a collection of JSON documents.
SELECT_FILES = text(
    "SELECT df.collection_id, df.doc_id,"
    " df.extracted_version IS NOT DISTINCT FROM df.version AS done, df.error"
    + _CURRENT_FILES
    + " ORDER BY df.collection_id, df.doc_id"
)
LOCK_DOCUMENT = text(
    "SELECT 1 FROM documents WHERE collection_id = :cid AND id = :id FOR NO KEY UPDATE"
)
# One file, locked while it is extracted: a second worker waits, then finds it done.
LOCK_PENDING = text(
    "SELECT df.collection_id, df.doc_id, df.sha256, df.filename, df.base, df.version"
    + _CURRENT_FILES
    + " WHERE df.extracted_version IS DISTINCT FROM df.version FOR NO KEY UPDATE OF df"
)
SELECT_FAILED = text(
    "SELECT df.collection_id, df.doc_id, df.error"
    + _CURRENT_FILES
    + " WHERE df.extracted_version = df.version AND df.error IS NOT NULL"
)
UPDATE_BODY = text(
    "UPDATE documents SET body = CAST(:body AS jsonb), updated_at = now()"
    " WHERE collection_id = :cid AND id = :id AND version = :version"
)
MARK_EXTRACTED = text(
    "UPDATE document_files SET extracted_version = :version, extractor = :extractor,"
    " error = :error WHERE collection_id = :cid AND doc_id = :id"
)
DELETE_PAGES = text("DELETE FROM document_pages WHERE collection_id = :cid AND doc_id = :id")
INSERT_PAGES = text(
    "INSERT INTO document_pages (collection_id, doc_id, page, text)"
    " SELECT :cid, :id, p.n, p.t FROM unnest(CAST(:texts AS text[])) WITH ORDINALITY AS p(t, n)"
)
PARALLEL = len(os.sched_getaffinity(0))
# What the extraction sets, unless the user gave a value at upload.
USER_OVERRIDABLE = ("title", "author", "created", "language")


def limits_from(settings: Settings) -> Limits:
    return Limits(
        cpu_seconds=settings.extract_cpu_seconds,
        memory_bytes=settings.extract_memory_bytes,
        timeout_seconds=settings.extract_timeout_seconds,
        max_output_bytes=settings.extract_max_output_bytes,
    )


def extract_pending(
    engine: Engine, keys: Sequence[tuple[int, str]], settings: Settings
) -> dict[tuple[int, str], str]:
    """Extract the not yet extracted files among `keys` ((collection id, document id)),
    committing each result; returns the documents whose current file failed, with why."""
    if not keys:
        return {}
    params = {"cids": [k[0] for k in keys], "ids": [k[1] for k in keys]}
    with engine.connect() as conn:
        found = conn.execute(SELECT_FILES, params).all()
    failed = {
        (int(r.collection_id), str(r.doc_id)): str(r.error) for r in found if r.done and r.error
    }
    limits = limits_from(settings)
    pending = [(int(r.collection_id), str(r.doc_id)) for r in found if not r.done]
    if not pending:
        return failed
    # One child per CPU at once: a batch of many files is not left to one core while the
    # other worker threads find every chunk claimed.
    with ThreadPoolExecutor(min(len(pending), PARALLEL)) as pool:
        for key, error in pool.map(lambda k: (k, _extract_locked(engine, k, limits)), pending):
            if error is not None:
                failed[key] = error
    return failed


def _extract_locked(engine: Engine, key: tuple[int, str], limits: Limits) -> str | None:
    """Extract one file under its row lock and commit the result; the failure reason."""
    cid, doc_id = key
    with engine.begin() as conn:
        # The document's row first, as writes take it (then its file's): no deadlock with
        # an upload of the same id.
        conn.execute(LOCK_DOCUMENT, {"cid": cid, "id": doc_id})
        row = conn.execute(LOCK_PENDING, {"cids": [cid], "ids": [doc_id]}).first()
        collection = collections.load_by_id(conn, cid) if row is not None else None
        if row is None or collection is None:
            # Extracted by another worker meanwhile (or replaced, or deleted): its result.
            failed = conn.execute(SELECT_FAILED, {"cids": [cid], "ids": [doc_id]}).first()
            return None if failed is None else str(failed.error)
        error = _extract_one(conn, collection, doc_id, row, limits)
        if error is not None:
            log.info("file extraction failed", collection=collection.name, id=doc_id, reason=error)
        conn.execute(
            MARK_EXTRACTED,
            {
                "version": row.version,
                "extractor": EXTRACTOR_VERSION,
                "error": error,
                "cid": cid,
                "id": doc_id,
            },
        )
        return error


def _extract_one(
    conn: Connection, collection: Collection, doc_id: str, row: Any, limits: Limits
) -> str | None:
    data = storage.read_bytes(conn, row.sha256)
    try:
        extracted = extract_in_child(data, row.filename, limits)
        body = document_body(collection, dict(row.base), extracted)
    except ExtractionError as exc:
        return str(exc)
    conn.execute(
        UPDATE_BODY,
        {
            "body": ingest.canonical_json(body),
            "cid": collection.id,
            "id": doc_id,
            "version": row.version,
        },
    )
    conn.execute(DELETE_PAGES, {"cid": collection.id, "id": doc_id})
    if extracted.page_texts:
        conn.execute(
            INSERT_PAGES, {"cid": collection.id, "id": doc_id, "texts": extracted.page_texts}
        )
    return None


def document_body(
    collection: Collection, base: dict[str, Any], extracted: Extracted
) -> dict[str, Any]:
    """The stored document: the upload's fields, the extracted ones beside them."""
    body = dict(base)
    body["content"] = extracted.content
    body["content_type"] = extracted.content_type
    if extracted.pages is not None:
        body["pages"] = extracted.pages
    for name in USER_OVERRIDABLE:
        value = getattr(extracted, name)
        if value is not None and body.get(name) is None:
            body[name] = value
    try:
        checked = validate_document(collection, 0, body)
        ingest.stored_form(0, checked)
    except DocumentError as exc:
        raise ExtractionError(
            f"the extracted text does not fit the collection: {exc.message}"
        ) from None
    return json.loads(ingest.canonical_json(checked))  # type: ignore[no-any-return]


# Files extracted by another extractor version get a new document version and an outbox
# row, as any write does; the worker then extracts them again.
REQUEUE_STALE = text(
    """
    WITH stale AS (
        UPDATE documents d SET version = nextval('document_version_seq'), updated_at = now()
        FROM document_files df
        WHERE df.collection_id = :cid AND d.collection_id = df.collection_id
          AND d.id = df.doc_id AND d.version = df.version
          AND df.extracted_version = df.version AND df.extractor IS DISTINCT FROM :extractor
        RETURNING d.id, d.version
    ), relinked AS (
        UPDATE document_files df SET version = s.version FROM stale s
        WHERE df.collection_id = :cid AND df.doc_id = s.id
    )"""
    + Q._queue_chunks("stale AS s", "upsert", "NULL::bigint")
)


def requeue_stale(engine: Engine, collection_name: str) -> int:
    """Queue for extraction again the collection's files that another extractor version
    extracted; returns how many."""
    with engine.begin() as conn:
        collection = collections.load_for_write(conn, collection_name)
        queued = ingest.queued_ids(
            conn.execute(REQUEUE_STALE, {"cid": collection.id, "extractor": EXTRACTOR_VERSION})
        )
        if queued:
            conn.execute(Q.NOTIFY_OUTBOX)
    return len(queued)
