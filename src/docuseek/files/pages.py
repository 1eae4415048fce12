"""Which pages of a paged hit (PDF) matched: the query's words against the stored pages of
the returned hits only, so the cost grows with the page of hits, not the collection."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, text

from docuseek.schema import Collection

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


def matching_pages(
    engine: Engine, collection: Collection, q: str, doc_ids: list[str]
) -> dict[str, list[int]]:
    terms = [t for t in positive_terms(q) if t.strip('"').strip()]
    if not terms or not doc_ids:
        return {}
    query = " || ".join(f"websearch_to_tsquery('english', :t{i})" for i in range(len(terms)))
    sql = text(
        "SELECT p.doc_id, (array_agg(p.page ORDER BY p.page))[1:"
        f"{MAX_PAGES_LISTED}] FROM document_pages p"
        " JOIN document_files df ON df.collection_id = p.collection_id AND df.doc_id = p.doc_id"
        " JOIN documents d ON d.collection_id = df.collection_id AND d.id = df.doc_id"
        " AND d.version = df.version"
        " WHERE p.collection_id = :cid AND p.doc_id = ANY(CAST(:ids AS text[]))"
        f" AND p.tsv @@ ({query}) GROUP BY p.doc_id"
    )
    params: dict[str, Any] = {"cid": collection.id, "ids": doc_ids}
    params.update({f"t{i}": term for i, term in enumerate(terms)})
    with engine.connect() as conn:
        return {doc_id: list(pages) for doc_id, pages in conn.execute(sql, params)}


def annotate(
    engine: Engine, collection: Collection, q: str, response: dict[str, Any]
) -> dict[str, Any]:
    """Add `"pages": [...]` to each hit of a search response whose pages matched."""
    hits = response.get("hits") or []
    found = matching_pages(engine, collection, q, [h["id"] for h in hits]) if q.strip() else {}
    for hit in hits:
        if hit["id"] in found:
            hit["pages"] = found[hit["id"]]
    return response
