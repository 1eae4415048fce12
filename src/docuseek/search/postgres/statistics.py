"""What PostgreSQL's ANALYZE knows of an index table's words, kept for a while per process.

ANALYZE counts a table's rows, and samples each tsvector column to keep its most common
lexemes with the share of rows holding each (`pg_stats.most_common_elems`). Reading them
costs a millisecond, and they change only when the table is analyzed again, so each
process keeps them for `COMMON_LEXEMES_TTL` seconds. Whatever uses them must stay right
with stale or missing statistics: they only tell which of several correct plans is likely
cheaper.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psycopg

COMMON_LEXEMES_TTL = 300.0  # seconds a process keeps a table's statistics
_MAX_TABLES = 256  # tables whose statistics a process keeps at once

Lexemes = tuple[tuple[str, float], ...]  # (lexeme, share of rows), most common first


@dataclass(frozen=True)
class TableStatistics:
    rows: float  # the table's rows, as ANALYZE last counted them
    lexemes: dict[str, Lexemes]  # tsvector column → its most common lexemes

    def rows_holding(self, column: str, lexemes: Iterable[str]) -> float:
        """The rows whose `column` holds one of `lexemes`, as the statistics expect them
        (the lexemes taken to be in distinct rows; 0 for lexemes not among the common)."""
        shares = self.shares(column)
        return self.rows * min(1.0, sum(shares.get(lexeme, 0.0) for lexeme in lexemes))

    def shares(self, column: str) -> dict[str, float]:
        """`column`'s most common lexemes → the share of rows holding each."""
        return self._shares.get(column, {})

    @cached_property
    def _shares(self) -> dict[str, dict[str, float]]:
        return {column: dict(kept) for column, kept in self.lexemes.items()}


# (server, database, schema-qualified table) → (monotonic time read, statistics): one
# process may search several databases (tests do).
_Key = tuple[str, int, str, str]
_cache: dict[_Key, tuple[float, TableStatistics]] = {}
_lock = threading.Lock()

# The frequencies array is longer than the lexemes' (it ends with the minimum, maximum and
# null frequencies), so the lexemes are paired with it by position.
_COMMON_LEXEMES = (
    "SELECT s.attname, e, f FROM pg_stats s,"
    " unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(e, f)"
    " WHERE s.schemaname = %(schema)s AND s.tablename = %(table)s"
    " AND s.attname IN ('tsv', 'tsv_top') AND e IS NOT NULL ORDER BY s.attname, f DESC, e"
)
_ROWS = (
    "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = %(schema)s AND c.relname = %(table)s"
)


def table_statistics(conn: psycopg.Connection[Any], table: str) -> TableStatistics:
    """What ANALYZE last found of `table`: its rows and the most common lexemes of its
    `tsv` and `tsv_top` columns (none before its first ANALYZE)."""
    now = time.monotonic()
    key = (conn.info.host, conn.info.port, conn.info.dbname, table)
    with _lock:
        kept = _cache.get(key)
    if kept is not None and now - kept[0] < COMMON_LEXEMES_TTL:
        return kept[1]
    schema, _, name = table.rpartition(".")
    where = {"schema": schema or "public", "table": name}
    lexemes: dict[str, list[tuple[str, float]]] = {"tsv": [], "tsv_top": []}
    with conn.cursor() as cur:
        for column, e, f in cur.execute(_COMMON_LEXEMES, where).fetchall():
            lexemes[str(column)].append((str(e), float(f)))
        row = cur.execute(_ROWS, where).fetchone()
    rows = max(0.0, float(row[0])) if row is not None else 0.0
    found = TableStatistics(rows, {column: tuple(common) for column, common in lexemes.items()})
    with _lock:
        if len(_cache) >= _MAX_TABLES:
            _cache.clear()
        _cache[key] = (now, found)
    return found


def common_lexemes(conn: psycopg.Connection[Any], table: str) -> Lexemes:
    """The most common lexemes of `table`'s `tsv` column with the share of rows holding
    each, most common first; empty before the table's first ANALYZE."""
    return table_statistics(conn, table).lexemes.get("tsv", ())


def forget() -> None:
    """Drop every kept statistic: the next search reads them again."""
    with _lock:
        _cache.clear()
