"""What a search response says beside its hits: how many of the collection's writes are
still being indexed, and which pages of the hits uploaded as paged files (PDF) hold the
query's words. Both come from one statement on the read pool (autocommit, no pre-ping),
so a search pays one more round trip for them, not two pooled transactions of three."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from docuseek import queries as Q
from docuseek.files import pages
from docuseek.schema import Collection


@dataclass(frozen=True)
class SearchContext:
    pending_tasks: int
    pages: dict[str, list[int]]


def search_context(
    read_engine: Engine, collection: Collection, q: str, hit_ids: list[str]
) -> SearchContext:
    matched = pages.matching_pages_sql(q, hit_ids)
    pages_sql, params = matched if matched else ("NULL::jsonb", {})
    statement = text(f"SELECT ({Q.COUNT_PENDING_TASKS.text}) AS pending, {pages_sql} AS pages")
    params = {**params, "name": collection.name, "collection_id": collection.id}
    row = _read_one(read_engine, statement, params)
    return SearchContext(pending_tasks=int(row[0]), pages=row[1] or {})


def _read_one(read_engine: Engine, statement: Any, params: dict[str, Any]) -> Any:
    try:
        with read_engine.connect() as conn:
            return conn.execute(statement, params).one()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # A pooled connection died (a server restart) and SQLAlchemy dropped the pool with it:
    # a read is safe to run once more, on a fresh connection.
    with read_engine.connect() as conn:
        return conn.execute(statement, params).one()
