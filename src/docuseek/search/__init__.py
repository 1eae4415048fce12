"""Search backends: one interface (`SearchBackend`), PostgreSQL and OpenSearch implementations."""

from docuseek.search.base import (
    BackendUnavailable,
    BatchResult,
    FieldFilter,
    GenerationMissing,
    Hit,
    IndexOp,
    InvalidCursor,
    SearchBackend,
    SearchQuery,
    SearchResult,
    SortKey,
)

__all__ = [
    "BackendUnavailable",
    "BatchResult",
    "FieldFilter",
    "GenerationMissing",
    "Hit",
    "InvalidCursor",
    "IndexOp",
    "SearchBackend",
    "SearchQuery",
    "SearchResult",
    "SortKey",
]
