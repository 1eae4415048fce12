"""The worker reads its batch's documents by key, whatever the planner believes.

Found on 2026-11-26 (issue 5's ingest rounds): after collections were deleted, autovacuum
analyzed `documents` while it held only their dead rows, so the planner took the table for
empty. The worker's lookup of its batch's current versions, `(collection_id, id) IN
(unnest …)`, was then planned as a scan of `documents` joined to the batch's keys in a
nested loop, 2-4 s per batch of 1,000 while a new collection loaded (57 s for 63,666
documents instead of 8.5).
"""

from __future__ import annotations

from sqlalchemy import text

from docuseek import queries as Q
from tests.helpers import BOOK_FIELDS, Service, plan_nodes


def test_the_version_lookup_reads_by_key_after_documents_was_analyzed_empty(
    service: Service,
) -> None:
    service.create_collection("gone", BOOK_FIELDS)
    service.add("gone", [{"id": f"g{i}", "title": f"old {i}"} for i in range(6000)])
    service.drain()
    assert service.client.delete("/collections/gone").status_code in (200, 202, 204)
    with service.engine.begin() as conn:
        conn.execute(text("ANALYZE documents"))  # what autovacuum did: only dead rows
        conn.execute(text("ALTER TABLE documents SET (autovacuum_enabled = off)"))
    service.create_collection("books", BOOK_FIELDS)
    ids = [f"b{i}" for i in range(3000)]
    service.add("books", [{"id": i, "title": f"new {i}"} for i in ids])

    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'books'")).scalar_one()
        keys = ids[:1000]
        for statement in (Q.SELECT_CURRENT_VERSIONS, Q.SELECT_CURRENT_DOCUMENTS):
            explain = text("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.text)
            plan = conn.execute(explain, {"cids": [cid] * len(keys), "ids": keys}).scalar_one()
            nodes = list(plan_nodes(plan[0]["Plan"]))
            read = sum(
                (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"]
                for n in nodes
                if n.get("Relation Name") == "documents"
            )
            assert plan[0]["Plan"]["Actual Rows"] == len(keys)
            # One row per key, not the table (9,000 rows, live and dead) per key or in all.
            assert read <= 2 * len(keys), (read, [n["Node Type"] for n in nodes])
