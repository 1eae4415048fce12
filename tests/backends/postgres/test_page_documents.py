"""PostgreSQL: a result page reads its documents by key, whatever the planner believes.

`documents` holds every collection. A collection loaded after the table was last analyzed
is missing from its statistics, so the planner takes it for a handful of rows; joined as a
plain LEFT JOIN, the page's documents were then read as one scan of the whole collection,
materialized and filtered once per page row (found on 2026-11-26: 82-111 ms for a page of
11 hits on a 64k-document collection next to a 1M-document one, against 2 ms).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from docuseek.search.postgres import PostgresBackend
from tests.helpers import Service, plan_nodes

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}


def docs(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i:05d}", "title": f"title {i}", "body": f"shared words {i % 10}"}
        for i in range(n)
    ]


def test_a_page_reads_its_documents_by_key_when_statistics_miss_the_collection(
    service: Service,
) -> None:
    service.create_collection("old", FIELDS)
    service.add("old", docs("o", 3000))
    service.drain()
    with service.engine.begin() as conn:
        conn.execute(text("ANALYZE documents"))
        # No analyze from here on: the new collection stays out of the statistics, as one
        # loaded since autovacuum last analyzed the table (10% of it must change first).
        conn.execute(text("ALTER TABLE documents SET (autovacuum_enabled = off)"))
    service.create_collection("new", FIELDS)
    service.add("new", docs("n", 3000))
    service.drain()
    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'new'")).scalar_one()
        plan = conn.execute(
            text(f"EXPLAIN (FORMAT JSON) SELECT * FROM documents WHERE collection_id = {cid}")
        ).scalar_one()
    assert plan[0]["Plan"]["Plan Rows"] < 100  # the planner's belief; 3,000 are there

    backend = service.backend
    assert isinstance(backend, PostgresBackend)
    # Searches run their statements on psycopg's connection: watch them go by there.
    statements: list[tuple[str, Any]] = []
    execute = psycopg.Cursor.execute

    def capture(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append((query, params))
        return execute(cursor, query, params, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Cursor, "execute", capture)
        for q in ("shared", "title 7"):  # tiered (3,000 matches) and ranked (few)
            result = service.search("new", q=q, limit=10)
            assert len(result["hits"]) == 10
            assert all(h["highlights"] for h in result["hits"]), result["hits"]

    pages = [(s, p) for s, p in statements if "FROM documents" in s]
    assert len(pages) >= 2, [s for s, _ in statements]
    for statement, params in pages:
        raw = backend.search_engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
            (plan,) = cursor.fetchone()
        finally:
            raw.close()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        read = [
            n["Actual Rows"] * n["Actual Loops"]
            for n in plan_nodes(plan[0]["Plan"])
            if n.get("Relation Name") == "documents"
        ]
        # About one document per page row (limit + 1; PostgreSQL reports rows per loop as a
        # rounded mean), not the collection's 3,000.
        assert read and sum(read) < 15, (read, statement)
