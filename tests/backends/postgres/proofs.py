"""The rows a planner condition finds, for tests of the first page's proofs of a broad
query (rows that are matches, found a cheaper way than counting every match)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine, text

from docuseek import collections
from docuseek.search.base import SearchQuery
from docuseek.search.postgres import planner, statistics
from docuseek.search.postgres.layout import table_name
from tests.helpers import Service


def load_analyzed(
    service: Service,
    engine: Engine,
    fields: dict[str, Any],
    docs: list[dict[str, Any]],
    name: str = "docs",
) -> None:
    """Collection `name` holding `docs`, indexed and ANALYZEd: the planner's estimates and
    ANALYZE's statistics, which decide the ways a search goes, are the corpus's own (and
    no process keeps older ones)."""
    service.create_collection(name, fields)
    service.add(name, docs)
    service.drain()
    collection = collections.load_cached(engine, name)
    with engine.begin() as conn:
        conn.execute(text(f"ANALYZE {table_name(collection, collection.generation)}"))
    statistics.forget()


def rows_found(
    engine: Engine,
    name: str,
    query: SearchQuery,
    exact_limit: int,
    condition: Callable[[planner.Search], str],
) -> tuple[str, set[str]]:
    """The condition a search of `query` in collection `name` builds (`condition` picks
    it from the search), and the ids of the rows it finds; no rows when it is ""."""
    collection = collections.load_cached(engine, name)
    table = table_name(collection, collection.generation)
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        search = planner.Search(driver, collection, table, query, exact_limit=exact_limit)
        where = condition(search)
        if not where:
            return "", set()
        sql = f"SELECT id FROM {table} WHERE {where}"
        return where, {row[0] for row in driver.execute(sql, search.params.values)}
