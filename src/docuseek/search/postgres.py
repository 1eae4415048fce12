"""PostgreSQL full-text search backend.

One table per collection generation in the `docuseek_index` schema:
(id, version, doc jsonb, tsv tsvector) with a GIN index on tsv. A deleted document
stays as a tombstone (doc and tsv NULL) holding its delete version, so a late upsert of
an older version cannot bring it back. Weights come from the schema (setweight A–D),
queries use websearch_to_tsquery, highlights ts_headline on the page's rows only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, ProgrammingError

from docuseek.schema import Collection, FieldSpec
from docuseek.search.base import (
    BackendUnavailable,
    BatchResult,
    FieldFilter,
    GenerationMissing,
    Hit,
    IndexOp,
    InvalidCursor,
    SearchQuery,
    SearchResult,
    effective_sort,
)

log = structlog.get_logger("docuseek.search.postgres")

SCHEMA = "docuseek_index"
# Index writes need not wait for their own WAL flush: the worker acknowledges the outbox
# rows afterwards in a synchronous commit, whose flush covers every earlier WAL record. If
# the server crashes before that, the rows are still queued and are applied again.
ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
TS_CONFIG = "english"
RANK_NORMALIZATION = 32  # rank / (rank + 1): scores in [0, 1)
HEADLINE_OPTIONS = "StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=25, MinWords=8"


def classify(exc: DBAPIError) -> str:
    """Why a write failed: 'unavailable' (connection, shutdown, resources), 'missing' (the
    table is gone), 'document' (data the index cannot take) or 'error' (anything else)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if exc.connection_invalidated or sqlstate is None or sqlstate[:2] in ("08", "53", "57"):
        return "unavailable"
    if sqlstate == "42P01":  # undefined_table
        return "missing"
    if sqlstate[:2] in ("22", "54"):  # data exception, program limit exceeded
        return "document"
    return "error"


def table_name(collection: Collection, generation: int) -> str:
    # Ids and generations are integers: safe to splice into identifiers.
    return f"{SCHEMA}.c{int(collection.id)}_g{int(generation)}"


def _json_text(field: str) -> str:
    return "doc->>" + _quote_literal(field)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def tsvector_sql(collection: Collection, doc_expr: str = "doc") -> str:
    parts = [
        f"setweight(to_tsvector('{TS_CONFIG}', coalesce({doc_expr}->>{_quote_literal(f.name)}, "
        f"'')), '{f.weight}')"
        for f in collection.text_fields
    ]
    return " || ".join(parts) if parts else "''::tsvector"


def value_sql(spec: FieldSpec) -> tuple[str, str]:
    """(SQL expression of a field's value, SQL type its parameters are cast to)."""
    raw = _json_text(spec.name)
    if spec.type in ("integer", "float"):
        return f"({raw})::numeric", "numeric"
    if spec.type == "boolean":
        return f"({raw})::boolean", "boolean"
    return raw, "text"  # keyword, date (canonical ISO text sorts as time)


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, sql_type: str | None = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"CAST(:{name} AS {sql_type})" if sql_type else f":{name}"


class PostgresBackend:
    name = "postgres"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- lifecycle -------------------------------------------------------------------------

    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise BackendUnavailable(f"PostgreSQL is unreachable: {exc.orig}") from exc

    def ensure_collection(self, collection: Collection, generation: int) -> None:
        table = table_name(collection, generation)
        short = table.split(".", 1)[1]
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {table} ("
                    " id text PRIMARY KEY, version bigint NOT NULL, doc jsonb, tsv tsvector)"
                )
            )
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {short}_tsv ON {table} USING gin (tsv)"))

    def drop_generation(self, collection: Collection, generation: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {table_name(collection, generation)}"))

    def drop_collection(self, collection: Collection) -> None:
        with self.engine.begin() as conn:
            tables = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = :schema"
                    " AND tablename LIKE :pattern"
                ),
                {"schema": SCHEMA, "pattern": f"c{int(collection.id)}\\_g%"},
            ).scalars()
            for name in list(tables):
                conn.execute(text(f'DROP TABLE IF EXISTS {SCHEMA}."{name}"'))

    def activate_generation(self, collection: Collection, generation: int) -> None:
        # Searches read the generation from the collections row; nothing to switch here.
        return None

    def close(self) -> None:
        return None

    # -- writes ----------------------------------------------------------------------------

    def index_batch(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        table = table_name(collection, generation)
        try:
            with self.engine.begin() as conn:
                conn.execute(ASYNC_COMMIT)
                self._write(conn, collection, table, ops)
            return BatchResult()
        except DBAPIError as exc:
            kind = classify(exc)
            if kind == "unavailable":
                raise BackendUnavailable(str(exc.orig)) from exc
            if kind == "missing":
                raise GenerationMissing(table) from exc
            if kind == "error":
                raise
            # One document the index cannot take (e.g. a tsvector over 1 MB) fails the whole
            # statement: apply the batch one document at a time to find it; the rest land.
            log.warning("batch rejected; isolating documents", error=str(exc.orig))
            return self._write_one_by_one(collection, table, ops)

    def _write_one_by_one(
        self, collection: Collection, table: str, ops: Sequence[IndexOp]
    ) -> BatchResult:
        result = BatchResult()
        with self.engine.begin() as conn:
            for op in ops:
                try:
                    with conn.begin_nested():
                        self._write(conn, collection, table, [op])
                except DBAPIError as exc:
                    if classify(exc) != "document":
                        raise
                    result.failed[op.doc_id] = str(exc.orig).splitlines()[0]
        return result

    def _write(
        self, conn: Connection, collection: Collection, table: str, ops: Sequence[IndexOp]
    ) -> None:
        upserts = [op for op in ops if not op.is_delete]
        deletes = [op for op in ops if op.is_delete]
        if upserts:
            conn.execute(
                text(
                    f"INSERT INTO {table} AS t (id, version, doc, tsv)"
                    f" SELECT u.id, u.version, u.doc, {tsvector_sql(collection, 'u.doc')}"
                    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(id text, version bigint,"
                    " doc jsonb)"
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
                    " doc = excluded.doc, tsv = excluded.tsv"
                    " WHERE t.version <= excluded.version"
                ),
                # One JSON parameter: psycopg's text-array quoting costs more than the insert.
                {
                    "rows": json.dumps(
                        [
                            {"id": op.doc_id, "version": op.version, "doc": op.document}
                            for op in upserts
                        ]
                    )
                },
            )
        if deletes:
            # A tombstone keeps the delete's version, so an older upsert cannot revive it.
            conn.execute(
                text(
                    f"INSERT INTO {table} AS t (id, version, doc, tsv)"
                    " SELECT d.id, d.version, NULL, NULL"
                    " FROM unnest(CAST(:ids AS text[]), CAST(:versions AS bigint[]))"
                    " AS d(id, version)"
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
                    " doc = NULL, tsv = NULL WHERE t.version < excluded.version"
                ),
                {"ids": [op.doc_id for op in deletes], "versions": [op.version for op in deletes]},
            )

    # -- reads -----------------------------------------------------------------------------

    def count(self, collection: Collection) -> int:
        table = table_name(collection, collection.generation)
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE doc IS NOT NULL")
                ).scalar_one()
            )

    def iter_versions(self, collection: Collection) -> Iterator[tuple[str, int]]:
        table = table_name(collection, collection.generation)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(
                text(f"SELECT id, version FROM {table} WHERE doc IS NOT NULL ORDER BY id")
            )
            for row in result:
                yield row[0], int(row[1])

    def _filter_sql(self, collection: Collection, flt: FieldFilter, params: _Params) -> str:
        spec = collection.fields[flt.field]
        expr, sql_type = value_sql(spec)
        clauses: list[str] = []
        if flt.values:
            if spec.type == "keyword":
                # `?|` matches a string value and any element of an array value.
                key = _quote_literal(spec.name)
                clauses.append(
                    f"(doc->{key}) ?| {params.add([str(v) for v in flt.values], 'text[]')}"
                )
            else:
                clauses.append(f"{expr} = ANY({params.add(list(flt.values), sql_type + '[]')})")
        for op, bound in ((">=", flt.gte), (">", flt.gt), ("<=", flt.lte), ("<", flt.lt)):
            if bound is not None:
                clauses.append(f"{expr} {op} {params.add(bound, sql_type)}")
        return " AND ".join(clauses) if clauses else "TRUE"

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        table = table_name(collection, collection.generation)
        params = _Params()
        has_q = bool(query.q.strip())
        where = ["doc IS NOT NULL"]
        if has_q:
            where.append(f"tsv @@ websearch_to_tsquery('{TS_CONFIG}', :q)")
            params.values["q"] = query.q
        where += [self._filter_sql(collection, f, params) for f in query.filters]
        match_sql = " AND ".join(where)

        rank_sql = f"ts_rank(tsv, websearch_to_tsquery('{TS_CONFIG}', :q), {RANK_NORMALIZATION})"
        sort_keys = effective_sort(query)
        # Rank only what we must: every match when results are ordered by relevance, else
        # just the rows of the page.
        rank_all = has_q and any(k.field == "_score" for k in sort_keys)
        keyset: list[tuple[str, bool, str]] = []  # (expr over m, descending, sql type)
        for key in sort_keys:
            if key.field == "_score":
                expr, sql_type = ("score" if rank_all else "0::real"), "real"
            elif key.field == "_id":
                expr, sql_type = "id", "text"
            else:
                expr, sql_type = value_sql(collection.fields[key.field])
                keyset.append((f"({expr} IS NULL)", False, "boolean"))
            keyset.append((expr, key.descending, sql_type))

        page_where = "TRUE"
        if query.after is not None:
            page_where = _keyset_condition(keyset, query.after, params)
        order_by = ", ".join(f"s{i} {'DESC' if d else 'ASC'}" for i, (_, d, _) in enumerate(keyset))
        select_sort = ", ".join(f"{expr} AS s{i}" for i, (expr, _, _) in enumerate(keyset))
        extra = [] if rank_all or not has_q else [f"{rank_sql} AS page_score"]
        extra_needs_tsv = bool(extra)
        # When ranking, OFFSET 0 keeps the subquery from being flattened so ts_rank runs once
        # per row; otherwise flattening lets ORDER BY id … LIMIT walk the primary key.
        matches = (
            f"SELECT id, doc, tsv, {rank_sql if rank_all else 'NULL::real'} AS score"
            f" FROM {table} WHERE {match_sql}{' OFFSET 0' if rank_all else ''}"
        )
        hits_sql = (
            f"SELECT id, doc, score, {select_sort}{', tsv' if extra_needs_tsv else ''}"
            f" FROM ({matches}) AS m"
            f" WHERE {page_where} ORDER BY {order_by} LIMIT {int(query.limit) + 1}"
        )
        if has_q and query.highlight and collection.text_fields:
            extra += [
                f"ts_headline('{TS_CONFIG}', {_escaped(f.name)},"
                f" websearch_to_tsquery('{TS_CONFIG}', :q), '{HEADLINE_OPTIONS}') AS h_{i}"
                for i, f in enumerate(collection.text_fields)
            ]
        if extra:  # per-page work, on the page's rows only
            columns = ", ".join(["id", "doc", "score"] + [f"s{i}" for i in range(len(keyset))])
            hits_sql = (
                f"SELECT {columns}, {', '.join(extra)} FROM ({hits_sql}) AS page"
                f" ORDER BY {order_by}"
            )

        try:
            with self.engine.connect() as conn:
                rows = conn.execute(text(hits_sql), params.values).mappings().all()
                total, facets = self._total_and_facets(conn, table, match_sql, query, params)
        except DataError as exc:
            if query.after is not None:
                raise InvalidCursor("cursor values do not fit this query") from exc
            raise
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) == "42P01":
                raise GenerationMissing(table) from exc
            raise
        except OperationalError as exc:
            raise BackendUnavailable(str(exc.orig)) from exc

        hits: list[Hit] = []
        for row in rows[: query.limit]:
            highlights: dict[str, list[str]] = {}
            for i, f in enumerate(collection.text_fields):
                snippet = row.get(f"h_{i}")
                if snippet and "<mark>" in snippet:
                    highlights[f.name] = [snippet]
            hits.append(
                Hit(
                    id=row["id"],
                    score=_score(row),
                    document=row["doc"],
                    highlights=highlights,
                    sort_values=[_jsonable(row[f"s{i}"]) for i in range(len(keyset))],
                )
            )
        return SearchResult(hits=hits, total=total, facets=facets, has_more=len(rows) > query.limit)

    def _total_and_facets(
        self, conn: Any, table: str, match_sql: str, query: SearchQuery, params: _Params
    ) -> tuple[int, dict[str, list[tuple[Any, int]]]]:
        if not query.facets:
            total = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE {match_sql}"), params.values
            ).scalar_one()
            return int(total), {}
        parts = ["(SELECT '' AS facet, NULL::jsonb AS value, count(*) AS n FROM m)"]
        for i, name in enumerate(query.facets):
            key = _quote_literal(name)
            parts.append(
                f"(SELECT {_quote_literal(name)}, v, count(*) FROM m,"
                f" jsonb_array_elements(CASE jsonb_typeof(doc->{key}) WHEN 'array'"
                f" THEN doc->{key} ELSE jsonb_build_array(doc->{key}) END) AS e{i}(v)"
                f" WHERE v IS NOT NULL AND v <> 'null'::jsonb"
                f" GROUP BY v ORDER BY count(*) DESC, v LIMIT {int(query.facet_size)})"
            )
        sql = (
            f"WITH m AS MATERIALIZED (SELECT doc FROM {table} WHERE {match_sql}) "
            + " UNION ALL ".join(parts)
        )
        total = 0
        facets: dict[str, list[tuple[Any, int]]] = {name: [] for name in query.facets}
        for facet, value, n in conn.execute(text(sql), params.values):
            if facet == "":
                total = int(n)
            else:
                facets[facet].append((value, int(n)))
        return total, facets


def _score(row: Any) -> float | None:
    score = row["score"] if row["score"] is not None else row.get("page_score")
    return None if score is None else float(score)


def _escaped(field: str) -> str:
    """The field's text with HTML metacharacters escaped, so snippets are safe to render."""
    raw = _json_text(field)
    return f"replace(replace(replace({raw}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _keyset_condition(
    keyset: list[tuple[str, bool, str]], after: Sequence[Any], params: _Params
) -> str:
    """Rows strictly after `after` in the keyset order (NULL-safe equality)."""
    if len(after) != len(keyset):
        raise InvalidCursor("cursor does not match this query's sort")
    ors: list[str] = []
    for i, (expr, descending, sql_type) in enumerate(keyset):
        ands = [
            f"{keyset[j][0]} IS NOT DISTINCT FROM {params.add(after[j], keyset[j][2])}"
            for j in range(i)
        ]
        ands.append(f"{expr} {'<' if descending else '>'} {params.add(after[i], sql_type)}")
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")"


def _jsonable(value: Any) -> Any:
    # numeric travels as its exact text; CAST(:p AS numeric) reads it back unchanged.
    return str(value) if isinstance(value, Decimal) else value
