"""A search that finds nothing tries once more, more forgiving of typos.

Meilisearch's rule counts a typo in the first letter as two, so `xernel` (one typo, in
the first letter, of a word allowed one) finds nothing. That rule keeps a first letter
from dragging in unrelated words while the query matches as typed; when it matches
nothing, any answer beats none. Both backends get the same retry, decided here.
"""

from __future__ import annotations

from dataclasses import replace

from docuseek.schema import Collection
from docuseek.search.base import SearchBackend, SearchQuery, SearchResult
from docuseek.search.query import retry_with_first_letter_typos


def search(backend: SearchBackend, collection: Collection, query: SearchQuery) -> SearchResult:
    """The backend's answer to the query; when it has no hits and the query allows typos,
    the answer with a typo in a word's first letter counted as one, not two."""
    result = backend.search(collection, query)
    if (
        result.total
        or not query.typo
        or query.first_letter_typos
        or not retry_with_first_letter_typos(
            query.q, collection.search_settings, prefix=query.prefix
        )
    ):
        return result
    return backend.search(collection, replace(query, first_letter_typos=True))
