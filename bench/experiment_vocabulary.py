"""Experiment: what keeping the typo-tolerance vocabulary costs the PostgreSQL index write.

    python -m bench.experiment_vocabulary --docs 64000 --rounds 3

Writes the corpus through PostgresBackend.index_batch (batches of 1000 documents with
their bodies, one writer, a fresh generation each time), with the vocabulary upkeep as
shipped and with the upsert alone, alternating, and prints documents per second of each
and the CPU seconds its PostgreSQL backend process spent (on a machine shared with other
work, wall time is noisy; the upkeep's cost is CPU in that process). The index write is
the part of the end-to-end ingest that the upkeep adds to, so its ratio bounds the
end-to-end cost from above.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.sql.elements import TextClause

from bench import corpus, servers
from docuseek.migrate import upgrade
from docuseek.schema import Collection, CollectionSchema
from docuseek.search.base import IndexOp, SearchQuery
from docuseek.search.postgres import PostgresBackend
from docuseek.search.postgres import backend as pg_backend
from docuseek.search.postgres.layout import table_name


@contextmanager
def without_vocabulary() -> Iterator[None]:
    """The upsert statement without the vocabulary's INSERT around it."""
    shipped = pg_backend._upsert

    def upsert_only(*args: Any) -> TextClause:
        sql = str(shipped(*args).text)
        inner = sql[len("WITH w AS (") : sql.rindex(") INSERT INTO ")]
        return text(inner.removesuffix(" RETURNING tsv"))

    pg_backend._upsert = upsert_only  # type: ignore[assignment]
    try:
        yield
    finally:
        pg_backend._upsert = shipped


def write_all(
    backend: PostgresBackend, collection: Collection, docs: list[dict[str, Any]], server_pid: int
) -> tuple[float, float]:
    """(documents per second, CPU seconds of the server process)."""
    cpu = servers.cpu_seconds(server_pid)
    started = time.perf_counter()
    for start in range(0, len(docs), 1000):
        ops = [IndexOp.upsert(d["id"], 1, d) for d in docs[start : start + 1000]]
        backend.index_batch(collection, collection.generation, ops)
    return len(docs) / (time.perf_counter() - started), servers.cpu_seconds(server_pid) - cpu


SEARCHES = ["stratgy", "strategy game", "postgresq", "ngnix", "librar", "documentation"]


def time_searches(
    backend: PostgresBackend,
    engine: Any,
    fields: dict[str, Any],
    docs: list[dict[str, Any]],
    server_pid: int,
    generation: int,
) -> None:
    """Mean latency of one search at a time, typos on and off (prefix off), on the corpus."""
    collection = Collection.from_row(1, "debian", fields, generation, None, True)
    backend.ensure_collection(collection, generation)
    write_all(backend, collection, docs, server_pid)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {table_name(collection, generation)}"))
        conn.execute(text(f"VACUUM ANALYZE {table_name(collection, generation)}_vocab"))
        words = conn.execute(
            text(f"SELECT count(*) FROM {table_name(collection, generation)}_vocab")
        ).scalar_one()
    print(f"vocabulary: {words} lexemes")
    for q in SEARCHES:
        line = [q]
        for typo in (True, False):
            query = SearchQuery(q=q, prefix=False, typo=typo, limit=10)
            result = backend.search(collection, query)
            started = time.perf_counter()
            for _ in range(20):
                backend.search(collection, query)
            ms = (time.perf_counter() - started) / 20 * 1000
            line.append(f"typo={typo}: {ms:.1f} ms, total {result.total}")
        print("; ".join(line), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=64_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    docs = list(corpus.read_ndjson(corpus.ensure_real_corpus(), a.docs))
    pg = servers.Postgres(corpus.DATA_DIR / "run" / "vocabulary" / "pg")
    try:
        pg.create_database("vocab")
        upgrade(pg.sqlalchemy_url("vocab"))
        # One connection, so one server process does every write.
        engine = create_engine(pg.sqlalchemy_url("vocab"), pool_size=1, max_overflow=0)
        with engine.connect() as conn:
            server_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        backend = PostgresBackend(engine)
        schema = CollectionSchema.model_validate({"fields": corpus.FIELDS})
        fields = json.loads(schema.model_dump_json())["fields"]
        rates: dict[str, list[float]] = {"vocabulary": [], "upsert only": []}
        cpus: dict[str, list[float]] = {"vocabulary": [], "upsert only": []}
        generation = 0
        for _ in range(a.rounds):
            for variant in rates:
                generation += 1
                collection = Collection.from_row(1, "debian", fields, generation, None, True)
                backend.ensure_collection(collection, generation)
                if variant == "vocabulary":
                    rate, cpu = write_all(backend, collection, docs, server_pid)
                else:
                    with without_vocabulary():
                        rate, cpu = write_all(backend, collection, docs, server_pid)
                backend.drop_generation(collection, generation)
                rates[variant].append(rate)
                cpus[variant].append(cpu)
                print(f"{variant}: {rate:.0f} docs/s, server CPU {cpu:.2f} s", flush=True)
        for variant, values in rates.items() if a.rounds else ():
            print(
                f"{variant}: median {statistics.median(values):.0f} docs/s,"
                f" server CPU median {statistics.median(cpus[variant]):.2f} s"
            )
        if a.rounds:
            ratio = statistics.median(rates["vocabulary"]) / statistics.median(rates["upsert only"])
            cpu_ratio = statistics.median(cpus["vocabulary"]) / statistics.median(
                cpus["upsert only"]
            )
            print(f"vocabulary / upsert only: rate {ratio:.3f}, server CPU {cpu_ratio:.3f}")
        time_searches(backend, engine, fields, docs, server_pid, generation + 1)
        backend.close()
        engine.dispose()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
