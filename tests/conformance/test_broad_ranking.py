"""A query matching more documents than the PostgreSQL backend ranks exactly
(PG_EXACT_LIMIT, 1,000) still gets its most relevant documents on the first page, on
every backend, and pages through every match exactly once."""

from __future__ import annotations

import os
from typing import Any

from docuseek.search.opensearch import OpenSearchBackend
from tests.helpers import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}
N = 1_100  # more than PG_EXACT_LIMIT


def test_a_broad_query_lists_its_best_matches_first_and_every_match_once(
    service: Service,
) -> None:
    # The best matches (the word repeated in title and body) have the highest ids, where
    # a listing in id order would reach them last.
    best = {f"d{i:04d}" for i in range(N - 10, N)}
    docs: list[dict[str, Any]] = [
        {"id": f"d{i:04d}", "title": f"common item {i}", "body": f"filler text {i % 7}"}
        for i in range(N - 10)
    ]
    docs += [
        {"id": doc_id, "title": "common common tool", "body": "common use, common needs"}
        for doc_id in sorted(best)
    ]
    service.create_collection("broad", FIELDS)
    service.add("broad", docs)
    service.drain()
    first = service.search("broad", q="common", limit=10)
    # osmem-server, the stand-in for OpenSearch, scores every match of a term alike (no
    # BM25); a real cluster ranks by term frequency.
    if not isinstance(service.backend, OpenSearchBackend) or os.environ.get("OPENSEARCH_URL"):
        assert {h["id"] for h in first["hits"]} == best
    seen = [h["id"] for h in first["hits"]]
    cursor = first["next_cursor"]
    while cursor:
        page = service.search("broad", q="common", limit=200, cursor=cursor)
        seen += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == N
