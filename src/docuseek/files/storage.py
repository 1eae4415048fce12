"""Originals in PostgreSQL: content-addressed `files` with their bytes in `file_chunks`,
written in the upload's transaction together with the documents, the task and the outbox
rows (the same statements as a JSON write, ingest.py), and read back for download and for
extraction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, text

from docuseek import collections, ingest
from docuseek import queries as Q
from docuseek.errors import InvalidInput, NotFound
from docuseek.files import detect
from docuseek.files.upload import Upload, UploadedFile
from docuseek.schema import Collection

TASK_FILES = "files_upload"

# The fields a file document gets, and the types a collection may declare them with.
FILE_FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "title": ("text",),
    "content": ("text",),
    "author": ("text", "keyword"),
    "created": ("date",),
    "language": ("keyword",),
    "pages": ("integer",),
    "content_type": ("keyword",),
    "size": ("integer",),
    "filename": ("keyword", "text"),
}
# Set from the file itself; a user's field may override the others (title, author, ...).
RESERVED_FIELDS = ("content", "pages", "content_type", "size", "filename")
SUGGESTED_SCHEMA = (
    '{"title": {"type": "text", "weight": "A"}, "content": {"type": "text"},'
    ' "author": {"type": "keyword", "facet": true}, "created": {"type": "date"},'
    ' "language": {"type": "keyword", "facet": true}, "pages": {"type": "integer"},'
    ' "content_type": {"type": "keyword", "facet": true}, "size": {"type": "integer"},'
    ' "filename": {"type": "keyword"}}'
)

# Bytes stored already get their `created_at` renewed, under a row lock held to the upload's
# commit: the garbage collector skips a locked original and keeps a recent one, so it never
# deletes what an upload is linking to. `xmax = 0` tells a new row from a renewed one.
INSERT_FILE = text(
    "INSERT INTO files (sha256, size, chunks) VALUES (decode(:sha, 'hex'), :size, :chunks)"
    " ON CONFLICT (sha256) DO UPDATE SET created_at = now() RETURNING (xmax = 0) AS inserted"
)
INSERT_CHUNK = text(
    "INSERT INTO file_chunks (sha256, seq, data) VALUES (decode(:sha, 'hex'), :seq, :data)"
)
SELECT_CHUNKS = text("SELECT data FROM file_chunks WHERE sha256 = :sha ORDER BY seq")
# Link each changed document to its file; an unchanged one keeps its link (and extraction).
UPSERT_DOCUMENT_FILES = text(
    """
    INSERT INTO document_files AS df
        (collection_id, doc_id, sha256, filename, content_type, base, version)
    SELECT :cid, i.id, decode(i.sha, 'hex'), i.filename, i.content_type, i.base, d.version
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS i(id text, sha text, filename text, content_type text, base jsonb)
    JOIN documents d ON d.collection_id = :cid AND d.id = i.id
    ON CONFLICT (collection_id, doc_id) DO UPDATE
        SET sha256 = excluded.sha256, filename = excluded.filename,
            content_type = excluded.content_type, base = excluded.base,
            version = excluded.version, extracted_version = NULL, extractor = NULL,
            error = NULL
        WHERE df.version <> excluded.version
    """
)
# The file of a document, unless a JSON write has replaced the document since.
SELECT_DOCUMENT_FILE = text(
    "SELECT df.sha256, df.filename, df.content_type, f.size FROM document_files df"
    " JOIN documents d ON d.collection_id = df.collection_id AND d.id = df.doc_id"
    " AND d.version = df.version JOIN files f ON f.sha256 = df.sha256"
    " WHERE df.collection_id = :cid AND df.doc_id = :id"
)


def check_schema(collection: Collection) -> None:
    """Files need a `content` text field to be searchable by their text; the file fields the
    collection declares must have types the extracted values fit."""
    content = collection.fields.get("content")
    if content is None or content.type != "text":
        raise InvalidInput(
            f"collection {collection.name!r} has no text field 'content' for the files' text:"
            f" add it to its schema (PUT /collections/{collection.name}), for example"
            f" {SUGGESTED_SCHEMA}",
            details=[{"field": "content", "message": "required as a text field for files"}],
        )
    wrong = [
        {"field": name, "message": f"declared {spec.type}; files need {' or '.join(allowed)}"}
        for name, allowed in FILE_FIELD_TYPES.items()
        if (spec := collection.fields.get(name)) is not None and spec.type not in allowed
    ]
    if wrong:
        first = wrong[0]
        raise InvalidInput(
            f"collection {collection.name!r}: field {first['field']!r} is {first['message']}",
            details=wrong,
        )


def base_document(
    uploaded: UploadedFile, fields: dict[str, Any], content_type: str
) -> dict[str, Any]:
    """What is stored at upload: the user's fields and the file's own; the worker adds the
    extracted ones."""
    clash = [name for name in RESERVED_FIELDS if name in fields]
    if clash:
        raise InvalidInput(
            f"field {clash[0]!r} is set from the file itself; leave it out of 'fields'",
            details=[{"field": name, "message": "set from the file"} for name in clash],
        )
    body: dict[str, Any] = {"id": uploaded.sha256, **fields}
    body["content_type"] = content_type
    body["size"] = uploaded.size
    if uploaded.filename:
        body["filename"] = uploaded.filename
    return body


@dataclass(frozen=True)
class _Prepared:
    uploaded: UploadedFile
    content_type: str
    body: dict[str, Any]


def store_upload(engine: Engine, collection_name: str, upload: Upload) -> ingest.Enqueued:
    """Originals, documents, task and outbox rows in one transaction: all or nothing."""
    prepared = []
    for uploaded, fields in zip(upload.files, upload.fields, strict=True):
        content_type = detect.detect(_head(uploaded), uploaded.filename)
        prepared.append(
            _Prepared(uploaded, content_type, base_document(uploaded, fields, content_type))
        )
    with engine.begin() as conn:
        collection = collections.load_for_write(conn, collection_name)
        check_schema(collection)
        ids, bodies, _ = ingest.prepare(collection, [p.body for p in prepared])
        by_id = {p.body["id"]: p for p in prepared}  # the last file of a repeated id wins
        files = [by_id[i] for i in ids]
        # The file's bytes count in the content hash: the same fields with other bytes change.
        hashes = [
            hashlib.sha256(f"{body}\n{p.uploaded.sha256}".encode()).hexdigest()
            for body, p in zip(bodies, files, strict=True)
        ]
        stored: set[str] = set()
        for p in files:
            if p.uploaded.sha256 not in stored:
                _store_bytes(conn, p.uploaded)
                stored.add(p.uploaded.sha256)
        task_id = conn.execute(
            Q.INSERT_TASK,
            {"type": TASK_FILES, "collection": collection.name, "received": len(upload.files)},
        ).scalar_one()
        changed = ingest.queued_ids(
            conn.execute(
                Q.UPSERT_DOCUMENTS,
                {
                    "cid": collection.id,
                    "rows": ingest.rows_json(ids, bodies, hashes),
                    "task_id": task_id,
                },
            )
        )
        rows = [
            {
                "id": i,
                "sha": p.uploaded.sha256,
                "filename": p.uploaded.filename,
                "content_type": p.content_type,
                "base": json.loads(body),
            }
            for i, body, p in zip(ids, bodies, files, strict=True)
        ]
        conn.execute(UPSERT_DOCUMENT_FILES, {"cid": collection.id, "rows": json.dumps(rows)})
        queued = len(changed)
        if queued < len(ids):
            unchanged = sorted(set(ids) - set(changed))
            queued += len(
                ingest.queued_ids(
                    conn.execute(
                        Q.REQUEUE_UNCHANGED_PENDING,
                        {"cid": collection.id, "ids": unchanged, "task_id": task_id},
                    )
                )
            )
        return ingest._finish(conn, task_id, len(upload.files), queued)


def _head(uploaded: UploadedFile) -> bytes:
    """Enough of the file to detect its kind; a zip's directory sits at its end, so a zip
    is read whole (it is bounded by DOCUSEEK_MAX_FILE_BYTES)."""
    uploaded.spool.seek(0)
    head = uploaded.spool.read(4096)
    if head.startswith(b"PK"):
        return uploaded.read_all()
    return head


def _store_bytes(conn: Connection, uploaded: UploadedFile) -> None:
    """The file's chunks, unless the same bytes are stored already (by any collection)."""
    chunks = -(-uploaded.size // 1024 // 1024) or 1
    inserted = conn.execute(
        INSERT_FILE, {"sha": uploaded.sha256, "size": uploaded.size, "chunks": chunks}
    ).scalar_one()
    if not inserted:
        return
    seq = 0
    for seq, block in enumerate(uploaded.chunks()):
        conn.execute(INSERT_CHUNK, {"sha": uploaded.sha256, "seq": seq, "data": block})
    if uploaded.size == 0:
        conn.execute(INSERT_CHUNK, {"sha": uploaded.sha256, "seq": seq, "data": b""})


def read_bytes(conn: Connection, sha256: bytes) -> bytes:
    return b"".join(bytes(row[0]) for row in conn.execute(SELECT_CHUNKS, {"sha": sha256}))


@dataclass(frozen=True)
class Original:
    filename: str | None
    content_type: str
    size: int
    data: bytes


def read_original(engine: Engine, collection_name: str, doc_id: str) -> Original:
    with engine.connect() as conn:
        collection = collections.load(conn, collection_name)
        row = conn.execute(SELECT_DOCUMENT_FILE, {"cid": collection.id, "id": doc_id}).first()
        if row is None:
            exists = conn.execute(Q.SELECT_DOCUMENT, {"cid": collection.id, "id": doc_id}).first()
            if exists is None:
                raise NotFound(
                    f"document {doc_id!r} does not exist in collection {collection_name!r}"
                )
            raise NotFound(
                f"document {doc_id!r} was not uploaded as a file (or was replaced by a JSON write)"
            )
        data = read_bytes(conn, row.sha256)
    return Original(row.filename, row.content_type, int(row.size), data)


# The collection's current files whose last extraction failed, by id, a page at a time.
SELECT_FAILED_FILES = text(
    "SELECT df.doc_id, df.filename, df.content_type, df.error, df.extractor"
    " FROM document_files df JOIN documents d ON d.collection_id = df.collection_id"
    " AND d.id = df.doc_id AND d.version = df.version"
    " WHERE df.collection_id = :cid AND df.error IS NOT NULL"
    " AND df.extracted_version = df.version AND df.doc_id > :after"
    " ORDER BY df.doc_id LIMIT :limit"
)


def failed_files(
    engine: Engine, collection_name: str, after: str, limit: int
) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        collection = collections.load(conn, collection_name)
        rows = conn.execute(
            SELECT_FAILED_FILES, {"cid": collection.id, "after": after, "limit": limit}
        ).all()
    return [
        {
            "id": r.doc_id,
            "filename": r.filename,
            "content_type": r.content_type,
            "error": r.error,
            "extractor": r.extractor,
        }
        for r in rows
    ]


# -- garbage collection of originals ----------------------------------------------------------

# Links a JSON write has replaced (the document's version moved past the link's): nothing
# reads them again, and they would keep their original stored. Rows a write holds are
# skipped, for the next run; locking both keeps a concurrent upload's fresh link.
DELETE_STALE_LINKS = text(
    """
    WITH stale AS (
        SELECT df.collection_id, df.doc_id FROM document_files df
        JOIN documents d ON d.collection_id = df.collection_id AND d.id = df.doc_id
        WHERE d.version <> df.version
        FOR UPDATE OF df, d SKIP LOCKED
    )
    DELETE FROM document_files df USING stale s
    WHERE df.collection_id = s.collection_id AND df.doc_id = s.doc_id
    """
)
# Originals no document links to, stored (or uploaded again) before the cut-off, a batch at
# a time; their chunks go with them (ON DELETE CASCADE).
DELETE_UNREFERENCED = text(
    """
    WITH gone AS (
        DELETE FROM files WHERE sha256 IN (
            SELECT f.sha256 FROM files f
            WHERE f.created_at < now() - make_interval(secs => :age)
              AND NOT EXISTS (SELECT 1 FROM document_files df WHERE df.sha256 = f.sha256)
            LIMIT :batch FOR UPDATE SKIP LOCKED
        )
        RETURNING size
    )
    SELECT count(*), coalesce(sum(size), 0) FROM gone
    """
)
GC_BATCH = 100


@dataclass(frozen=True)
class Collected:
    stale_links: int
    files: int
    bytes: int


def collect_garbage(engine: Engine, older_than_seconds: float = 3600.0) -> Collected:
    """Delete the originals no current document uses any more (a deleted document's, one
    replaced by another file or by a JSON write), when stored longer ago than
    `older_than_seconds`; an original another document shares stays."""
    with engine.begin() as conn:
        stale = conn.execute(DELETE_STALE_LINKS).rowcount
    files = size = 0
    while True:
        # One short transaction per batch: a large backlog holds no lock for long.
        with engine.begin() as conn:
            count, freed = conn.execute(
                DELETE_UNREFERENCED, {"age": older_than_seconds, "batch": GC_BATCH}
            ).one()
        files += int(count)
        size += int(freed)
        if count < GC_BATCH:
            return Collected(stale, files, size)
