"""Which pages of a paged hit (PDF) matched: the query's words against the stored pages of
the returned hits only, so the cost grows with the page of hits, not the collection."""

from __future__ import annotations

import re
from typing import Any

MAX_PAGES_LISTED = 50
MAX_TERMS = 16
# A page lists when it holds any of the query's wanted words or phrases: the words of a
# multi-word query often sit on different pages of the matching document.
_TERM = re.compile(r'(?<![\w"])-\S+|"([^"]+)"|(\S+)')


def positive_terms(q: str) -> list[str]:
    """The words and quoted phrases of a web-search query, without exclusions and `OR`."""
    terms = []
    for match in _TERM.finditer(q):
        term = match.group(1) or match.group(2)
        if term and term != "OR" and not match.group(0).startswith("-"):
            terms.append(f'"{term}"' if match.group(1) else term.strip('"'))
    return terms[:MAX_TERMS]


def matching_pages_sql(q: str, doc_ids: list[str]) -> tuple[str, dict[str, Any]] | None:
    """A scalar subquery and its parameters (psycopg's style): a JSON object from each of
    doc_ids whose stored pages hold the query's words to those pages (`collection_id` is
    the caller's parameter); None when there is nothing to look up."""
    terms = [t for t in positive_terms(q) if t.strip('"').strip()]
    if not terms or not doc_ids:
        return None
    query = " || ".join(
        f"websearch_to_tsquery('english', %(page_term{i})s)" for i in range(len(terms))
    )
    sql = (
        "(SELECT jsonb_object_agg(doc_id, pages) FROM (SELECT p.doc_id,"
        f" (array_agg(p.page ORDER BY p.page))[1:{MAX_PAGES_LISTED}] AS pages"
        " FROM document_pages p"
        " JOIN document_files df ON df.collection_id = p.collection_id AND df.doc_id = p.doc_id"
        " JOIN documents d ON d.collection_id = df.collection_id AND d.id = df.doc_id"
        " AND d.version = df.version"
        " WHERE p.collection_id = %(collection_id)s AND p.doc_id = ANY(%(page_ids)s::text[])"
        f" AND p.tsv @@ ({query}) GROUP BY p.doc_id) matched)"
    )
    params: dict[str, Any] = {"page_ids": doc_ids}
    params.update({f"page_term{i}": term for i, term in enumerate(terms)})
    return sql, params
