"""Index ops from rows of the `documents` table, in the form a backend takes them.

The worker and reindex read documents through the statements of an `OpBuilder` and turn
the rows into ops with it, without knowing which backend is behind it: one whose index
lives in the database of record (`reads_stored_documents`) is handed ids and versions, and
the bodies never leave PostgreSQL; any other is handed the bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import TextClause

from docuseek import queries as Q
from docuseek.search.base import IndexOp, SearchBackend


class OpBuilder:
    """The statements that read documents for `backend`, and the ops made from their rows.

    Rows are (id, version, body) where the backend takes bodies and (id, version) or
    (id, version, NULL) where it reads them itself."""

    def __init__(self, backend: SearchBackend) -> None:
        self.by_id = backend.reads_stored_documents
        # (collection_id, id, version, body or NULL) of the given (collection, id) keys that
        # exist (the worker's batch).
        self.select_current: TextClause = (
            Q.SELECT_CURRENT_VERSIONS if self.by_id else Q.SELECT_CURRENT_DOCUMENTS
        )
        # (id, version[, body]) of a collection's documents in id order, and of those
        # written since a version (reindex's copy and its catch-up).
        self.stream: TextClause = Q.STREAM_DOCUMENT_VERSIONS if self.by_id else Q.STREAM_DOCUMENTS
        self.stream_since: TextClause = (
            Q.STREAM_DOCUMENT_VERSIONS_SINCE if self.by_id else Q.STREAM_DOCUMENTS_SINCE
        )

    def upsert(self, doc_id: str, version: int, body: Any) -> IndexOp:
        """An upsert of a stored document (`body` is not read when the backend reads it)."""
        if self.by_id:
            return IndexOp.upsert_stored(doc_id, version)
        return IndexOp.upsert(doc_id, version, body)

    def upserts(self, rows: Iterable[Sequence[Any]]) -> list[IndexOp]:
        """Upserts from (id, version[, body]) rows."""
        if self.by_id:
            return [IndexOp.upsert_stored(row[0], int(row[1])) for row in rows]
        return [IndexOp.upsert(row[0], int(row[1]), row[2]) for row in rows]

    @staticmethod
    def delete(doc_id: str, version: int) -> IndexOp:
        """A document gone from PostgreSQL: a tombstone at `version`."""
        return IndexOp.delete(doc_id, version)
