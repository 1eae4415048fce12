"""The PostgreSQL backend's pool of connections for searches."""

from __future__ import annotations

from typing import Any

import pydantic_core
from psycopg.types.json import set_json_loads
from sqlalchemy import Engine, create_engine, event


def make_search_engine(engine: Engine, pool_size: int = 10) -> Engine:
    """A pool for read-only searches on the same database: autocommit, so a search costs
    no BEGIN and ROLLBACK round trips, and no pre-ping, a third extra round trip. A
    connection found dead is invalidated by SQLAlchemy with the rest of the pool; the
    caller retries once.

    No server-side prepared statements (psycopg prepares a statement after its fifth
    run): PostgreSQL may then switch a prepared search to a generic plan, made without
    knowing the query's words, whose estimates fit no query. See bench/notes.md, 'Design
    decisions: search connection pool'."""
    search_engine = create_engine(
        engine.url,
        connect_args={"application_name": "docuseek-search", "prepare_threshold": None},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
    )
    event.listen(search_engine, "connect", _parse_json_fast)
    return search_engine


def _parse_json_fast(dbapi_connection: Any, _: Any) -> None:
    """A page's documents arrive as jsonb: parsed by pydantic-core's parser, a third of the
    standard library's time (see bench/notes.md, 'Design decisions: JSON by pydantic-core')."""
    set_json_loads(pydantic_core.from_json, dbapi_connection)
