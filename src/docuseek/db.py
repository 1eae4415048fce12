"""Database engine: one SQLAlchemy engine per process, psycopg 3 driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import pydantic_core
from psycopg.types.json import set_json_loads
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` spellings and pin the psycopg 3 driver."""
    for prefix in (
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.split(':', 1)[0]}://…")


def make_engine(url: str, pool_size: int = 10, application_name: str = "docuseek") -> Engine:
    return create_engine(
        normalize_url(url),
        connect_args={"application_name": application_name},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_read_engine(engine: Engine, pool_size: int = 10) -> Engine:
    """A pool for the api's read-only statements on the same database (searches, and the
    pending writes and matched pages a search response carries): autocommit, so a read
    costs no BEGIN and ROLLBACK round trips, and no pre-ping, a third extra round trip. A
    connection found dead is invalidated by SQLAlchemy with the rest of the pool; the
    caller retries once.

    No server-side prepared statements (psycopg prepares a statement after its fifth
    run): PostgreSQL may then switch a prepared search to a generic plan, made without
    knowing the query's words, whose estimates fit no query. See bench/notes.md, 'Design
    decisions: search connection pool'."""
    read_engine = create_engine(
        engine.url,
        connect_args={"application_name": "docuseek-search", "prepare_threshold": None},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        isolation_level="AUTOCOMMIT",
    )
    event.listen(read_engine, "connect", _parse_json_fast)
    event.listen(read_engine, "connect", _no_jit)
    return read_engine


T = TypeVar("T")


class ConnectionLost(Exception):
    """A read found its pooled connection dead twice (the cause is the driver's error)."""


def read_on_driver(read_engine: Engine, work: Callable[[psycopg.Connection[Any]], T]) -> T:
    """work() on psycopg's connection of a read-pool connection: SQLAlchemy's statement and
    result objects cost a third of a search's Python time (see bench/notes.md, 'Design
    decisions: searches on the driver's connection'). A connection found dead (a server
    restart) drops the pool with it, having no pre-ping; a read is safe to run once more,
    on a fresh connection, and a second loss raises ConnectionLost."""
    for attempt in (1, 2):
        with read_engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            try:
                return work(driver)
            except psycopg.OperationalError as exc:
                if not driver.broken:
                    raise
                conn.invalidate()
                read_engine.dispose()
                if attempt == 2:
                    raise ConnectionLost() from exc
    raise AssertionError("unreachable")


def _parse_json_fast(dbapi_connection: Any, _: Any) -> None:
    """jsonb arrives parsed by pydantic-core's parser, a third of the standard library's
    time (see bench/notes.md, 'Design decisions: JSON by pydantic-core')."""
    set_json_loads(pydantic_core.from_json, dbapi_connection)


def _no_jit(dbapi_connection: Any, _: Any) -> None:
    """No JIT compilation for searches: where PostgreSQL has it (built with LLVM, as the
    official images are; the embedded server is not), it compiles every run of a statement
    it estimates dear, which costs a search's short statements more than it saves (see
    bench/notes.md, 'Design decisions: no JIT for searches')."""
    dbapi_connection.execute("SET jit = off")


# Connection-level failures: the server is down, restarting, unreachable, or the pool had
# no connection to give in time. Anything else the database raises is a bug.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether exc (or what it wraps) says the database cannot be reached right now."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in ("08", "57"):
            return True  # connection exception; operator intervention (shutdown)
        current = current.__cause__
    return False


def describe_failure(exc: BaseException) -> str:
    """One line for the log: the exception's type and the first line of its text."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
