"""Raw PostgreSQL baseline: the same documents and queries, straight SQL, no API.

The table is what a competent engineer would write by hand for the same query paths:
typed columns, a stored weighted tsvector (description A, long_description C, as the
Docuseek collection declares them, with the same 100-position gap between the fields so
that a phrase cannot span both), and the indexes a Docuseek collection of these fields
keeps, created before the load so that both sides maintain the same indexes row by row:
one GIN index over the tsvector and the keyword fields as text arrays (filters are
intersected inside it), a GIN index over the top-weight field's tsvector, a btree on the
integer field. (Until 2026-11-26 the table had the tsvector's GIN index only, so its loads
did less index upkeep than Docuseek's; bench/notes.md has the ratios both ways.) Loads use
COPY (one per batch and transaction) or, for batch size 1, one INSERT per autocommitted
transaction.
Queries have the API's semantics: websearch_to_tsquery, ts_rank (normalization
32) over every match, exact total, ts_headline on the page's rows only, facets by
GROUP BY.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from bench.corpus import COLUMNS, FIELDS
from bench.parallel import ingest_result, run_parallel, scalar

_phrase_index = importlib.import_module("docuseek.migrations.versions.0005_phrase_index")

# The row's tsvector; {row} is "" in the generated column, "NEW." in --index-phrases'
# trigger.
TSV = """ts_delete(
        setweight(to_tsvector('english', coalesce({row}description, '')), 'A') ||
        '''field gap'':100'::tsvector ||
        setweight(to_tsvector('english', coalesce({row}long_description, '')), 'C'),
        'field gap')"""
# The collection's keyword fields (filters and facets), each also kept as a text array for
# the GIN index.
KEYWORDS = tuple(name for name, spec in FIELDS.items() if spec["type"] == "keyword")
MATCH_COLUMNS = ", ".join(["tsv", *(f"kw_{k}" for k in sorted(KEYWORDS))])
_KEYWORD_ARRAYS = ",\n    ".join(
    f"kw_{k} text[] GENERATED ALWAYS AS (CASE WHEN {k} IS NOT NULL THEN ARRAY[{k}] END) STORED"
    for k in KEYWORDS
)
# Each batch is written in the order Docuseek's worker writes one (its facet fields by
# name, then id: `Layout.cluster_columns`), so both sides get the same page locality.
FACETS = sorted(name for name, spec in FIELDS.items() if spec.get("facet"))


def _cluster_key(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (*((doc.get(k) is None, doc.get(k) or "") for k in FACETS), doc["id"])


DDL = f"""
DROP TABLE IF EXISTS raw_docs;
CREATE TABLE raw_docs (
    id text PRIMARY KEY,
    package text, section text, priority text, maintainer text, installed_size integer,
    description text, long_description text,
    tsv tsvector GENERATED ALWAYS AS ({TSV.format(row="")}) STORED,
    tsv_top tsvector GENERATED ALWAYS AS
        (setweight(to_tsvector('english', coalesce(description, '')), 'A')) STORED,
    {_KEYWORD_ARRAYS}
);
CREATE INDEX raw_docs_tsv ON raw_docs USING gin ({MATCH_COLUMNS});
CREATE INDEX raw_docs_tsv_top ON raw_docs USING gin (tsv_top);
CREATE INDEX raw_docs_installed_size ON raw_docs (installed_size);
"""

# --index-phrases: the word pairs of a Docuseek collection with index_phrases (the same
# function, from its migration), in the same GIN index as tsv, so that both sides of the
# ingest comparison maintain the same index. The raw queries do not use them. A generated
# column cannot read another, so tsv is set by a trigger here (as Docuseek's INSERT sets
# it), and pairs is generated from it.
PAIRS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS docuseek_index;
{_phrase_index.WORD_PAIRS};
ALTER TABLE raw_docs ALTER COLUMN tsv DROP EXPRESSION;
CREATE OR REPLACE FUNCTION raw_docs_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.tsv := {TSV.format(row="NEW.")}; RETURN NEW; END $$;
CREATE TRIGGER raw_docs_tsv BEFORE INSERT OR UPDATE ON raw_docs
    FOR EACH ROW EXECUTE FUNCTION raw_docs_tsv();
ALTER TABLE raw_docs ADD COLUMN pairs int[]
    GENERATED ALWAYS AS (docuseek_index.word_pairs(tsv)) STORED;
DROP INDEX raw_docs_tsv;
CREATE INDEX raw_docs_tsv ON raw_docs USING gin ({MATCH_COLUMNS}, pairs);
"""

HEADLINE_OPTIONS = "StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=25, MinWords=8"

HITS_SQL = """
SELECT page.id, page.score,
       ts_headline('english', page.description, q, %(hl)s),
       ts_headline('english', page.long_description, q, %(hl)s)
FROM (SELECT id, description, long_description, ts_rank(tsv, q, 32) AS score
      FROM raw_docs, websearch_to_tsquery('english', %(q)s) AS q
      WHERE tsv @@ q {filter} ORDER BY score DESC, id LIMIT %(limit)s) AS page,
     websearch_to_tsquery('english', %(q)s) AS q
ORDER BY page.score DESC, page.id
"""


def _filter_sql(flt: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    if not flt:
        return "", {}
    clauses, params = [], {}
    for i, (field, value) in enumerate(sorted(flt.items())):
        if field not in COLUMNS:
            raise ValueError(field)
        if isinstance(value, dict):
            for op, sym in (("gte", ">="), ("gt", ">"), ("lte", "<="), ("lt", "<")):
                if op in value:
                    clauses.append(f"{field} {sym} %(f{i}{op})s")
                    params[f"f{i}{op}"] = value[op]
        elif field in KEYWORDS:
            # Through the GIN index, as Docuseek's keyword filters.
            clauses.append(f"kw_{field} && ARRAY[%(f{i})s]::text[]")
            params[f"f{i}"] = value
        else:
            clauses.append(f"{field} = %(f{i})s")
            params[f"f{i}"] = value
    return " AND " + " AND ".join(clauses), params


CAPPED_HITS_SQL = """
SELECT page.id, page.score,
       ts_headline('english', page.description, q, %(hl)s),
       ts_headline('english', page.long_description, q, %(hl)s)
FROM (SELECT id, description, long_description, ts_rank(tsv, q, 32) AS score
      FROM (SELECT id, description, long_description, tsv FROM raw_docs,
                   websearch_to_tsquery('english', %(q)s) AS q
            WHERE tsv @@ q {filter} LIMIT %(cap)s) AS cand,
           websearch_to_tsquery('english', %(q)s) AS q
      ORDER BY score DESC, id LIMIT %(limit)s) AS page,
     websearch_to_tsquery('english', %(q)s) AS q
ORDER BY page.score DESC, page.id
"""


class RawPostgres:
    """cap=None: exact semantics (rank every match, exact total and facets). cap=N: the
    bounded variant proposed for Docuseek — rank only the first N matches, count up to N
    (a total of N then means "at least N"), facets over those N."""

    def __init__(
        self,
        uri: str,
        cap: int | None = None,
        statement_timeout_s: float = 0.0,
        index_phrases: bool = False,
    ) -> None:
        self.uri = uri
        self.cap = cap
        self.index_phrases = index_phrases
        # Search connections only (0 = none): a query still running when its measurement
        # window ends is cut off instead of eating CPU in the next measurement.
        self.statement_timeout_ms = int(statement_timeout_s * 1000)
        self._local = threading.local()

    def conn(self) -> psycopg.Connection:
        c = getattr(self._local, "conn", None)
        if c is None or c.closed:
            c = self._local.conn = psycopg.connect(self.uri, autocommit=True)
            c.execute("SET jit = off")
            if self.statement_timeout_ms:
                c.execute(f"SET statement_timeout = {self.statement_timeout_ms}")
        return c

    def members(self, query: dict[str, Any], ids: Sequence[str]) -> int:
        """How many of ids match the query (and its filter): a check for result pages that
        cannot be compared by rank (Docuseek's tiered order beyond PG_EXACT_LIMIT)."""
        if not ids:
            return 0
        fsql, fparams = _filter_sql(query.get("filter"))
        sql = (
            "SELECT count(*) FROM raw_docs WHERE id = ANY(%(ids)s)"
            f" AND tsv @@ websearch_to_tsquery('english', %(q)s) {fsql}"
        )
        row = self.conn().execute(sql, {"ids": list(ids), "q": query["q"], **fparams})
        return int(scalar(row.fetchone()))

    def members_by_parts(self, query: dict[str, Any], ids: Sequence[str]) -> int:
        """How many of ids match the query when the separators PostgreSQL's parser keeps
        inside one token (`/`, `.`, `@`) are read as spaces, as Docuseek indexes a
        document (migration 0009's `split_joined`): its matches through the parts of a
        joined word, which the raw tsvector keeps whole (`System.Runtime library` for
        the phrase "runtime library")."""
        if not ids:
            return 0
        tsv = TSV.format(row="")
        for name in ("description", "long_description"):
            whole = f"coalesce({name}, '')"
            tsv = tsv.replace(whole, f"translate({whole}, '/.@', '   ')")
        fsql, fparams = _filter_sql(query.get("filter"))
        sql = (
            f"SELECT count(*) FROM raw_docs WHERE id = ANY(%(ids)s)"
            f" AND ({tsv}) @@ websearch_to_tsquery('english', %(q)s) {fsql}"
        )
        row = self.conn().execute(sql, {"ids": list(ids), "q": query["q"], **fparams})
        return int(scalar(row.fetchone()))

    def reset(self) -> None:
        with psycopg.connect(self.uri, autocommit=True) as c:
            c.execute(DDL)
            if self.index_phrases:
                c.execute(PAIRS_DDL)

    # -- ingest ---------------------------------------------------------------------------

    def load_batch(self, conn: psycopg.Connection, docs: Sequence[dict[str, Any]]) -> None:
        if len(docs) == 1:
            d = docs[0]
            conn.execute(
                f"INSERT INTO raw_docs ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join(['%s'] * len(COLUMNS))})"
                " ON CONFLICT (id) DO NOTHING",
                [d.get(c) for c in COLUMNS],
            )
            return
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY raw_docs ({', '.join(COLUMNS)}) FROM STDIN") as cp,
        ):
            for d in sorted(docs, key=_cluster_key):
                cp.write_row([d.get(c) for c in COLUMNS])

    def ingest(
        self, docs: Sequence[dict[str, Any]], batch: int, concurrency: int = 1
    ) -> dict[str, Any]:
        """Load docs in batches from `concurrency` connections; seconds until all committed."""
        batches = [docs[i : i + batch] for i in range(0, len(docs), batch)]
        conns = [psycopg.connect(self.uri, autocommit=True) for _ in range(concurrency)]

        def work(k: int) -> None:
            for b in batches[k::concurrency]:
                self.load_batch(conns[k], b)

        t0 = time.perf_counter()
        try:
            run_parallel(work, concurrency)
        finally:
            for c in conns:
                c.close()
        dt = time.perf_counter() - t0
        return ingest_result(len(docs), batch, concurrency, dt)

    def count(self) -> int:
        return int(scalar(self.conn().execute("SELECT count(*) FROM raw_docs").fetchone()))

    # -- search ---------------------------------------------------------------------------

    def search(self, query: dict[str, Any], limit: int = 10) -> dict[str, Any]:
        conn = self.conn()
        fsql, fparams = _filter_sql(query.get("filter"))
        params = {
            "q": query["q"],
            "hl": HEADLINE_OPTIONS,
            "limit": limit,
            "cap": self.cap,
            **fparams,
        }
        sql = HITS_SQL if self.cap is None else CAPPED_HITS_SQL
        rows = conn.execute(sql.format(filter=fsql), params).fetchall()
        facets: dict[str, list[Any]] = {}
        match = f"FROM raw_docs WHERE tsv @@ websearch_to_tsquery('english', %(q)s) {fsql}"
        if self.cap is not None:
            match = (
                f"FROM (SELECT * FROM raw_docs WHERE tsv @@ websearch_to_tsquery("
                f"'english', %(q)s) {fsql} LIMIT %(cap)s) AS capped"
            )
        if query.get("facets"):
            parts = ["(SELECT '' AS facet, NULL AS value, count(*) AS n FROM m)"]
            for name in query["facets"]:
                if name not in COLUMNS:
                    raise ValueError(name)
                parts.append(
                    f"(SELECT '{name}', {name}, count(*) FROM m GROUP BY {name}"
                    f" ORDER BY count(*) DESC, {name} LIMIT 20)"
                )
            cols = ", ".join(query["facets"])
            sql = f"WITH m AS MATERIALIZED (SELECT {cols} {match}) " + " UNION ALL ".join(parts)
            total = 0
            for facet, value, n in conn.execute(sql, params):
                if facet == "":
                    total = int(n)
                else:
                    facets.setdefault(facet, []).append({"value": value, "count": int(n)})
        else:
            total = int(scalar(conn.execute(f"SELECT count(*) {match}", params).fetchone()))
        return {"ids": [r[0] for r in rows], "total": total, "facets": facets}

    # -- size -----------------------------------------------------------------------------

    def size_bytes(self) -> dict[str, Any]:
        row = (
            self.conn()
            .execute("SELECT pg_total_relation_size('raw_docs'), pg_relation_size('raw_docs_tsv')")
            .fetchone()
        )
        if row is None:
            raise RuntimeError("the size statement returned no row")
        return {"total": int(row[0]), "fts_index": int(row[1])}
