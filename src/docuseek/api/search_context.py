"""What a search response says beside its hits: how many of the collection's writes are
still being indexed, and which pages of the hits uploaded as paged files (PDF) hold the
query's words.

One statement on the read pool (autocommit, no pre-ping), sent on psycopg's connection
itself as the searches are (`docuseek.db.read_on_driver`): a search pays one short round
trip for it. The pages are looked up only in collections that have some, which the same
statement tells (see bench/notes.md, 'Design decisions: the search response's context').
A backend that read the collection's state with its hits (PostgreSQL: `CollectionState`)
spares that statement; the pages, when there are some, still take one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from docuseek.db import read_on_driver
from docuseek.files import pages
from docuseek.queries import has_pages_sql, pending_tasks_sql
from docuseek.search.base import CollectionState

PENDING_TASKS = pending_tasks_sql("%(name)s")
HAS_PAGES = has_pages_sql("%(collection_id)s")

# Collections (by id) last seen with stored pages. Only a hint of which statement to send:
# the statement itself says whether the collection has pages now, and a wrong guess costs
# one more statement, never a wrong answer.
_paged: set[int] = set()


@dataclass(frozen=True)
class SearchContext:
    pending_tasks: int
    pages: dict[str, list[int]]


def search_context(
    read_engine: Engine,
    collection_id: int,
    name: str,
    q: str,
    hit_ids: list[str],
    state: CollectionState | None = None,
) -> SearchContext:
    params: dict[str, Any] = {"name": name, "collection_id": collection_id}
    matched = pages.matching_pages_sql(q, hit_ids)
    if state is not None:
        if matched is None or not state.has_pages:
            return SearchContext(state.pending_tasks, {})
        pages_sql, page_params = matched
        (found,) = _row(read_engine, f"SELECT {pages_sql}", {**params, **page_params})
        return SearchContext(state.pending_tasks, found or {})
    if matched is None:
        (pending,) = _row(read_engine, PENDING_TASKS, params)
        return SearchContext(int(pending), {})
    pages_sql, page_params = matched
    params.update(page_params)
    looked_up = collection_id in _paged
    pages_column = pages_sql if looked_up else "NULL::jsonb"
    pending, has_pages, found = _row(
        read_engine, f"SELECT ({PENDING_TASKS}), {HAS_PAGES}, {pages_column}", params
    )
    if has_pages:
        _paged.add(collection_id)
        if not looked_up:  # its first pages since this process last looked
            (found,) = _row(read_engine, f"SELECT {pages_sql}", params)
    else:
        _paged.discard(collection_id)
    return SearchContext(int(pending), found or {})


def _row(read_engine: Engine, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    row = read_on_driver(read_engine, lambda driver: driver.execute(sql, params).fetchone())
    assert row is not None
    return tuple(row)
