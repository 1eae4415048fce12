"""The search backend interface: what a backend must do, and what its callers promise.

Every backend keeps, per collection, numbered *generations* of its index: the worker
writes to `Collection.write_generations`, searches read `Collection.generation`, and a
reindex builds generation n+1 beside n before switching. Documents carry the global
version from PostgreSQL; a backend must keep the highest version it has seen for each id
(deletes included), which makes applying an op twice, or late, a no-op.

A new backend (another engine, or another index inside PostgreSQL) is one new module with
a class meeting `SearchBackend`, plus one branch in `factory.make_backend`. Its callers
(the worker, reindex, reconcile, collections, the search route) know only this module:
- ops reach it built by `search.ops.OpBuilder`, which reads `reads_stored_documents` to
  choose between handing over bodies and handing over ids;
- errors it raises are the exceptions below, which callers turn into retries, 503, 409;
- work that must commit or roll back with a change of the collection's row happens in
  `drop_collection`, on the caller's transaction (see `SearchBackend`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from docuseek.schema import Collection

if TYPE_CHECKING:
    from sqlalchemy import Connection


class BackendUnavailable(RuntimeError):
    """The search engine cannot be reached; the API answers 503 and the worker retries."""


class InvalidCursor(ValueError):
    """The cursor's values do not fit the query (tampered with, or from another sort)."""


class SchemaConflict(RuntimeError):
    """The engine's existing index cannot take a schema change in place."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(fields.values()))
        self.fields = fields  # field name -> what stands in the way


class GenerationMissing(RuntimeError):
    """The generation asked for does not exist (dropped by a concurrent reindex)."""


class OpKind(Enum):
    DELETE = "delete"  # leave a tombstone at `version`
    UPSERT = "upsert"  # index `document` at `version`
    UPSERT_STORED = "upsert_stored"  # index the stored document of that id, read by the
    # backend from the `documents` table at its current version (>= `version`): only for a
    # backend with `reads_stored_documents`


@dataclass(frozen=True, init=False)
class IndexOp:
    """One document's change for `SearchBackend.index_batch`. Build it with `delete`,
    `upsert` or `upsert_stored`; `IndexOp(doc_id, version, document)` is short for an
    upsert of `document`, or a delete when it is None."""

    doc_id: str
    version: int
    document: dict[str, Any] | None  # the body of an UPSERT; None for the other kinds
    kind: OpKind

    def __init__(
        self,
        doc_id: str,
        version: int,
        document: dict[str, Any] | None = None,
        kind: OpKind | None = None,
    ) -> None:
        if kind is None:
            kind = OpKind.DELETE if document is None else OpKind.UPSERT
        if (kind is OpKind.UPSERT) != (document is not None):
            raise ValueError(f"{kind.value}: only an upsert carries a document, and it must")
        object.__setattr__(self, "doc_id", doc_id)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "document", document)
        object.__setattr__(self, "kind", kind)

    @classmethod
    def delete(cls, doc_id: str, version: int) -> IndexOp:
        return cls(doc_id, version, None, OpKind.DELETE)

    @classmethod
    def upsert(cls, doc_id: str, version: int, document: dict[str, Any]) -> IndexOp:
        return cls(doc_id, version, document, OpKind.UPSERT)

    @classmethod
    def upsert_stored(cls, doc_id: str, version: int) -> IndexOp:
        return cls(doc_id, version, None, OpKind.UPSERT_STORED)

    @property
    def is_delete(self) -> bool:
        return self.kind is OpKind.DELETE


@dataclass
class BatchResult:
    """Per-document failures of one batch (doc_id → reason); the rest landed."""

    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldFilter:
    """`field` equals any of `values`, and/or lies within the bounds given."""

    field: str
    values: tuple[Any, ...] = ()
    gte: Any = None
    gt: Any = None
    lte: Any = None
    lt: Any = None


@dataclass(frozen=True)
class SortKey:
    field: str  # a declared sortable field, "_score" or "_id"
    descending: bool = False


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    filters: tuple[FieldFilter, ...] = ()
    facets: tuple[str, ...] = ()
    sort: tuple[SortKey, ...] = ()  # empty: relevance when q, else _id
    limit: int = 20
    after: tuple[Any, ...] | None = None  # sort values of the last hit of the previous page
    highlight: bool = True
    facet_size: int = 20
    prefix: bool = True  # the last word also matches the words it begins
    typo: bool = True  # words may match with typos, by the collection's settings
    # A typo in a word's first letter counts as one, not two: set by the retry of a query
    # that found nothing (search.forgiving).
    first_letter_typos: bool = False


@dataclass
class Hit:
    id: str
    score: float | None
    document: dict[str, Any]
    highlights: dict[str, list[str]]
    sort_values: list[Any]


@dataclass(frozen=True)
class CollectionState:
    """What the system of record said of the collection as the hits were read: a backend
    that reads it in the same statement spares the response a round trip of its own."""

    pending_tasks: int  # the collection's writes still being indexed
    has_pages: bool  # some of its documents have stored pages (PDF) to look up


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[tuple[Any, int]]]
    has_more: bool
    total_exact: bool = True  # False: at least `total` documents match
    exact_order: bool = True  # False: tiered relevance (PostgreSQL, many matches)
    state: CollectionState | None = None  # None: the backend did not read it


def effective_sort(query: SearchQuery) -> tuple[SortKey, ...]:
    """The full keyset order: the requested keys, then `_id` as the tiebreaker."""
    keys = query.sort or ((SortKey("_score", True),) if query.q.strip() else ())
    if not any(k.field == "_id" for k in keys):
        keys = (*keys, SortKey("_id"))
    return keys


class SearchBackend(Protocol):
    """A search engine's index of the collections.

    Transactions: PostgreSQL is the system of record and the backend follows it. Only
    `drop_collection` is called inside a transaction of the caller's, the one that deletes
    (or creates) the collection's row, before it commits: a backend whose index lives in
    that database does its work on that connection so that both commit or roll back
    together; any other backend does its work at once and ignores the connection (the
    row is not committed yet, so a failure there still rolls the change back). Every
    other method runs on the backend's own connections. `ensure_collection` may wait for
    index writes in flight (a table's DDL does), so callers never call it while holding
    the collection's row FOR UPDATE, except for a collection created in that transaction.
    """

    name: str
    # How upserts reach the backend (read only by `search.ops.OpBuilder`). True: the index
    # lives in the database of record, so the backend is handed ids
    # (`OpKind.UPSERT_STORED`) and reads the bodies in SQL; False: each upsert carries its
    # document (`OpKind.UPSERT`).
    reads_stored_documents: bool

    def check(self) -> None:
        """Raise BackendUnavailable unless the engine answers."""

    def ensure_collection(self, collection: Collection, generation: int) -> None:
        """Create (or update the mapping of) one generation's index. Idempotent."""

    def check_schema(self, collection: Collection) -> None:
        """Before a schema change commits: raise BackendUnavailable if the engine does not
        answer, SchemaConflict if an index being written cannot take the schema in place."""

    def drop_generation(self, collection: Collection, generation: int) -> None:
        """Drop one generation; a missing one is not an error."""

    def drop_collection(self, collection: Collection, conn: Connection) -> None:
        """Drop every generation of the collection, as part of the caller's transaction
        `conn` (see the class's docstring); a missing one is not an error."""

    def activate_generation(self, collection: Collection, generation: int) -> None:
        """Point searches at `generation` (an alias swap for OpenSearch)."""

    def index_batch(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        """Apply upserts and deletes in bulk; visible to search when this returns. Raise
        GenerationMissing if the generation does not exist, BackendUnavailable if the
        engine does not answer; a document the engine refuses is reported in the result."""

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        """Run a query against the live generation. Raise GenerationMissing if it does not
        exist or does not fit this copy of the schema (the caller reloads the collection
        and tries once more), InvalidCursor if `query.after` does not fit the query."""

    def count(self, collection: Collection) -> int:
        """Documents searchable in the live generation."""

    def iter_versions(self, collection: Collection) -> Iterator[tuple[str, int]]:
        """(id, version) of every searchable document in the live generation."""

    def close(self) -> None: ...
