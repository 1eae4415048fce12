"""What PostgreSQL's ANALYZE knows of an index table's words, kept for a while per process.

ANALYZE samples a tsvector column and keeps its most common lexemes with the share of
rows holding each (`pg_stats.most_common_elems`). Reading them costs a millisecond, and
they change only when the table is analyzed again, so each process keeps them for
`COMMON_LEXEMES_TTL` seconds. Whatever uses them must stay right with stale or missing
statistics: they only tell which of several correct plans is likely cheaper.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

COMMON_LEXEMES_TTL = 300.0  # seconds a process keeps a table's statistics
_MAX_TABLES = 256  # tables whose statistics a process keeps at once

# (server, database, schema-qualified table) → (monotonic time read, (lexeme, share of
# rows), most common first): one process may search several databases (tests do).
_Key = tuple[str, int, str, str]
_cache: dict[_Key, tuple[float, tuple[tuple[str, float], ...]]] = {}
_lock = threading.Lock()

# The frequencies array is longer than the lexemes' (it ends with the minimum, maximum and
# null frequencies), so the lexemes are paired with it by position.
_COMMON_LEXEMES = (
    "SELECT e, f FROM pg_stats s,"
    " unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(e, f)"
    " WHERE s.schemaname = %(schema)s AND s.tablename = %(table)s AND s.attname = 'tsv'"
    " AND e IS NOT NULL ORDER BY f DESC, e"
)


def common_lexemes(conn: psycopg.Connection[Any], table: str) -> tuple[tuple[str, float], ...]:
    """The most common lexemes of `table`'s `tsv` column with the share of rows holding
    each, most common first; empty before the table's first ANALYZE."""
    now = time.monotonic()
    key = (conn.info.host, conn.info.port, conn.info.dbname, table)
    with _lock:
        kept = _cache.get(key)
    if kept is not None and now - kept[0] < COMMON_LEXEMES_TTL:
        return kept[1]
    schema, _, name = table.rpartition(".")
    with conn.cursor() as cur:
        rows = cur.execute(_COMMON_LEXEMES, {"schema": schema or "public", "table": name})
        lexemes = tuple((str(e), float(f)) for e, f in rows.fetchall())
    with _lock:
        if len(_cache) >= _MAX_TABLES:
            _cache.clear()
        _cache[key] = (now, lexemes)
    return lexemes


def forget() -> None:
    """Drop every kept statistic: the next search reads them again."""
    with _lock:
        _cache.clear()
