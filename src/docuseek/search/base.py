"""The search backend interface.

Every backend keeps, per collection, numbered *generations* of its index: the worker
writes to `Collection.write_generations`, searches read `Collection.generation`, and a
reindex builds generation n+1 beside n before switching. Documents carry the global
version from PostgreSQL; a backend must keep the highest version it has seen for each id
(deletes included), which makes applying an op twice, or late, a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class IndexOp:
    doc_id: str
    version: int
    document: dict[str, Any] | None  # None: delete (unless stored)
    # An upsert whose body the backend reads from the `documents` table itself, at its
    # current version (≥ `version`): only for backends with `reads_stored_documents`.
    stored: bool = False

    @classmethod
    def upsert_stored(cls, doc_id: str, version: int) -> IndexOp:
        return cls(doc_id, version, None, stored=True)

    @classmethod
    def upsert(cls, doc_id: str, version: int, body: Any, *, stored: bool) -> IndexOp:
        """An upsert of a stored document: by id when the backend reads the stored
        documents itself (`stored`), else carrying its body."""
        return cls.upsert_stored(doc_id, version) if stored else cls(doc_id, version, body)

    @property
    def is_delete(self) -> bool:
        return self.document is None and not self.stored


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


@dataclass
class Hit:
    id: str
    score: float | None
    document: dict[str, Any]
    highlights: dict[str, list[str]]
    sort_values: list[Any]


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[tuple[Any, int]]]
    has_more: bool
    total_exact: bool = True  # False: at least `total` documents match
    exact_order: bool = True  # False: tiered relevance (PostgreSQL, many matches)


def effective_sort(query: SearchQuery) -> tuple[SortKey, ...]:
    """The full keyset order: the requested keys, then `_id` as the tiebreaker."""
    keys = query.sort or ((SortKey("_score", True),) if query.q.strip() else ())
    if not any(k.field == "_id" for k in keys):
        keys = (*keys, SortKey("_id"))
    return keys


class SearchBackend(Protocol):
    name: str
    # True: the index lives in the database of record, so the worker hands over ids only
    # (IndexOp.upsert_stored) and the backend reads the documents in SQL.
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

    def drop_collection(self, collection: Collection, conn: Connection | None = None) -> None:
        """Drop every generation of the collection. `conn`: the transaction that deletes
        the collection's row; an index inside PostgreSQL is dropped in it, so that both
        go at once."""

    def activate_generation(self, collection: Collection, generation: int) -> None:
        """Point searches at `generation` (an alias swap for OpenSearch)."""

    def index_batch(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        """Apply upserts and deletes in bulk; visible to search when this returns."""

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        """Run a query against the live generation."""

    def count(self, collection: Collection) -> int:
        """Documents searchable in the live generation."""

    def iter_versions(self, collection: Collection) -> Iterator[tuple[str, int]]:
        """(id, version) of every searchable document in the live generation."""

    def close(self) -> None: ...
