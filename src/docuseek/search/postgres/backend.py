"""PostgreSQL full-text search backend (the embedded default).

Table layout: `layout.py`. A deleted document stays as a tombstone row (live = false)
holding its delete version, so a late upsert of an older version cannot bring it back.
Queries use websearch_to_tsquery; the stored document and highlights (ts_headline) are
read for the rows of the page only.

Set-up, writes and error translation are here; a search's SQL is planned in `planner.py`
(exact ranking up to `exact_limit` matches, tiers beyond), on connections of the read-only
pool of `docuseek.db.make_read_engine`, which the api shares with its other reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import psycopg
import structlog
from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.exc import DBAPIError, OperationalError

from docuseek.db import ConnectionLost, make_read_engine, read_on_driver
from docuseek.schema import Collection
from docuseek.search.base import (
    BackendUnavailable,
    BatchResult,
    GenerationMissing,
    IndexOp,
    InvalidCursor,
    OpKind,
    SearchQuery,
    SearchResult,
)
from docuseek.search.postgres.layout import SCHEMA, Layout, table_name, vocabulary_table
from docuseek.search.postgres.planner import Search
from docuseek.settings import Settings

log = structlog.get_logger("docuseek.search.postgres")

# Index writes need not wait for their own WAL flush: the worker acknowledges the outbox
# rows afterwards in a synchronous commit, whose flush covers every earlier WAL record. If
# the server crashes before that, the rows are still queued and are applied again.
ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")
DEFAULT_EXACT_LIMIT: int = Settings.model_fields["pg_exact_limit"].default


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


# Characters of each text field a document is indexed with, tried in turn, when all of
# its words do not fit in one tsvector: random tokens (ids, hashes) take up to about 2.5
# bytes of tsvector per character of text, prose far less.
TEXT_LIMITS = (400_000, 200_000, 100_000, 50_000, 20_000)


def _too_many_words(exc: DBAPIError) -> bool:
    """Whether the write failed because a document's words passed the 1 MB a tsvector
    holds ('string is too long for tsvector')."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate == "54000" and "tsvector" in str(exc.orig)


class PostgresBackend:
    name = "postgres"
    # The index tables live beside `documents`: an upsert reads its body there in SQL rather
    # than through the worker's Python and back as a JSON parameter (see bench/notes.md,
    # 'Design decisions: the worker hands over ids').
    reads_stored_documents = True

    def __init__(
        self,
        engine: Engine,
        exact_limit: int = DEFAULT_EXACT_LIMIT,
        search_engine: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.exact_limit = exact_limit
        # The api passes its read pool; elsewhere one is made on the first search (workers
        # never search).
        self._search_engine = search_engine

    @property
    def search_engine(self) -> Engine:
        if self._search_engine is None:
            self._search_engine = make_read_engine(self.engine)
        return self._search_engine

    # -- lifecycle -------------------------------------------------------------------------

    def check(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise BackendUnavailable(f"PostgreSQL is unreachable: {exc.orig}") from exc

    def ensure_collection(self, collection: Collection, generation: int) -> None:
        table = table_name(collection, generation)
        with self.engine.begin() as conn:
            existing: dict[str, str] = dict(
                conn.execute(
                    text(
                        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                        " WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"
                    ),
                    {"t": table},
                ).all()
            )
            indexes = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                        " WHERE i.indrelid = to_regclass(:t)"
                    ),
                    {"t": table},
                ).scalars()
            )
            for statement in Layout(collection).ddl(generation, existing, indexes):
                conn.execute(text(statement))

    def check_schema(self, collection: Collection) -> None:
        # The index is in the database of record, and ensure_collection changes a column's
        # type in place (every document is indexed again after a type change).
        return None

    def drop_generation(self, collection: Collection, generation: int) -> None:
        with self.engine.begin() as conn:
            table = table_name(collection, generation)
            conn.execute(text(f"DROP TABLE IF EXISTS {table}, {vocabulary_table(table)}"))

    def drop_collection(self, collection: Collection, conn: Connection) -> None:
        # On the caller's transaction: the tables go when the collection's row does.
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
        if self._search_engine is not None:
            self._search_engine.dispose()

    # -- writes ----------------------------------------------------------------------------

    def index_batch(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        table = table_name(collection, generation)
        try:
            with self.engine.begin() as conn:
                conn.execute(ASYNC_COMMIT)
                self._write(conn, collection, generation, ops)
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
            return self._write_one_by_one(collection, generation, ops)

    def _write_one_by_one(
        self, collection: Collection, generation: int, ops: Sequence[IndexOp]
    ) -> BatchResult:
        result = BatchResult()
        with self.engine.begin() as conn:
            for op in ops:
                try:
                    with conn.begin_nested():
                        self._write(conn, collection, generation, [op])
                except DBAPIError as exc:
                    if classify(exc) != "document":
                        raise
                    if _too_many_words(exc) and self._write_cut(conn, collection, generation, op):
                        continue
                    result.failed[op.doc_id] = str(exc.orig).splitlines()[0]
        return result

    def _write_cut(
        self, conn: Connection, collection: Collection, generation: int, op: IndexOp
    ) -> bool:
        """Index a document whose words do not fit in one tsvector with its text fields
        cut, shorter each time, until they do (PostgreSQL itself indexes a field's words
        up to position 16,383 only); whether one fit."""
        for limit in TEXT_LIMITS:
            try:
                with conn.begin_nested():
                    self._write(conn, collection, generation, [op], text_limit=limit)
            except DBAPIError as exc:
                if not _too_many_words(exc):
                    raise
                continue
            log.warning(
                "document indexed with its text cut to fit the index",
                collection=collection.name,
                doc_id=op.doc_id,
                characters_per_field=limit,
            )
            return True
        return False

    def _write(
        self,
        conn: Connection,
        collection: Collection,
        generation: int,
        ops: Sequence[IndexOp],
        text_limit: int | None = None,
    ) -> None:
        table = table_name(collection, generation)
        layout = Layout(collection, generation, text_limit)
        inline = [op for op in ops if op.kind is OpKind.UPSERT]
        stored = [op for op in ops if op.kind is OpKind.UPSERT_STORED]
        deletes = [op for op in ops if op.kind is OpKind.DELETE]
        if inline:
            conn.execute(
                _upsert(
                    table,
                    layout,
                    "u.doc",
                    "jsonb_to_recordset(CAST(:rows AS jsonb)) AS u(id text, version bigint,"
                    " doc jsonb)",
                ),
                # One JSON parameter: psycopg's text-array quoting costs more than the insert.
                {
                    "rows": json.dumps(
                        [
                            {"id": op.doc_id, "version": op.version, "doc": op.document}
                            for op in inline
                        ]
                    )
                },
            )
        if stored:
            # The current row (its version is ≥ the op's). A document deleted meanwhile has
            # none: nothing is written, and its delete's own outbox row follows.
            conn.execute(
                _upsert(
                    table,
                    layout,
                    "u.body",
                    "documents AS u WHERE u.collection_id = :cid"
                    " AND u.id = ANY(CAST(:ids AS text[]))",
                ),
                {"cid": collection.id, "ids": [op.doc_id for op in stored]},
            )
        if deletes:
            # A tombstone keeps the delete's version, so an older upsert cannot revive it.
            conn.execute(
                text(
                    f"INSERT INTO {table} AS t (id, version, live)"
                    " SELECT d.id, d.version, false"
                    " FROM unnest(CAST(:ids AS text[]), CAST(:versions AS bigint[]))"
                    " AS d(id, version)"
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, live = false, "
                    + ", ".join(f"{name} = NULL" for name, _ in layout.insert_columns("d"))
                    + " WHERE t.version < excluded.version"
                ),
                {"ids": [op.doc_id for op in deletes], "versions": [op.version for op in deletes]},
            )

    # -- reads -----------------------------------------------------------------------------

    def count(self, collection: Collection) -> int:
        table = table_name(collection, collection.generation)
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE live")).scalar_one())

    def iter_versions(self, collection: Collection) -> Iterator[tuple[str, int]]:
        table = table_name(collection, collection.generation)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=5000).execute(
                text(f"SELECT id, version FROM {table} WHERE live ORDER BY id")
            )
            for row in result:
                yield row[0], int(row[1])

    def search(self, collection: Collection, query: SearchQuery) -> SearchResult:
        table = table_name(collection, collection.generation)
        try:
            return read_on_driver(
                self.search_engine,
                lambda driver: Search(
                    driver, collection, table, query, exact_limit=self.exact_limit
                ).run(),
            )
        except ConnectionLost as exc:
            raise BackendUnavailable(str(exc.__cause__)) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise GenerationMissing(table) from exc
        except (
            psycopg.errors.UndefinedColumn,
            psycopg.errors.DatatypeMismatch,
            psycopg.errors.UndefinedFunction,  # an operator for the column's old type
        ) as exc:
            # A field changed type, and the table's column has not yet (its DDL follows the
            # schema's commit), or this process's copy of the schema is older than the
            # table: as for a switched generation, the caller reloads and tries again.
            raise GenerationMissing(f"{table} does not match the schema: {exc}") from exc
        except psycopg.DataError as exc:
            if query.after is not None:
                raise InvalidCursor("cursor values do not fit this query") from exc
            raise
        except psycopg.OperationalError as exc:  # e.g. statement_timeout
            raise BackendUnavailable(str(exc)) from exc
        except OperationalError as exc:  # no connection to be had from the pool
            raise BackendUnavailable(str(exc.orig)) from exc


def _upsert(table: str, layout: Layout, doc: str, source: str) -> TextClause:
    """INSERT … SELECT of live rows from `source` (rows `u` with id, version and the JSON
    document at `doc`), in `Layout.cluster_columns` order; a row only replaces one of a
    lower or equal version."""
    columns = layout.insert_columns(doc)
    names = ", ".join(name for name, _ in columns)
    # Output positions of the SELECT (id is 1; the derived columns start at 4), so that the
    # sort reuses the computed values.
    position = {"id": 1, **{name: 4 + i for i, (name, _) in enumerate(columns)}}
    order = ", ".join(str(position[name]) for name in layout.cluster_columns())
    upsert = (
        f"INSERT INTO {table} AS t (id, version, live, {names})"
        f" SELECT u.id, u.version, true, {', '.join(expr for _, expr in columns)}"
        f" FROM {source} ORDER BY {order}"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version, live = true, "
        + ", ".join(f"{name} = excluded.{name}" for name, _ in columns)
        + " WHERE t.version <= excluded.version RETURNING tsv"
    )
    # The vocabulary gains the batch's new lexemes in the same statement. Inserted in
    # lexeme order (bytewise: any one order will do, and it is the cheapest), so two
    # batches adding the same new words wait for each other rather than deadlock; rows
    # are never updated, so existing words take no lock at all. A lexeme stays after its
    # last document goes: it only costs a candidate matching nothing.
    return text(
        f"WITH w AS ({upsert}) INSERT INTO {vocabulary_table(table)} (lexeme)"
        ' SELECT DISTINCT x COLLATE "C" FROM w, unnest(tsvector_to_array(w.tsv)) AS x'
        " ORDER BY 1 ON CONFLICT (lexeme) DO NOTHING"
    )
