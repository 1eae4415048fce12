"""PostgreSQL: the page statement also reads the collection's pending writes and whether
it has stored pages, so a search response needs no statement of its own for them."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}


def test_a_search_reads_the_pending_writes_with_its_page(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.create_collection("docs", FIELDS)
    service.add("docs", [{"id": "1", "title": "kernel notes", "body": "first"}])
    service.drain()
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def capture(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append(str(query))
        return execute(cursor, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", capture)
    service.add("docs", [{"id": "2", "title": "kernel more", "body": "second"}])
    statements.clear()
    result = service.search("docs", q="kernel", prefix="false")
    assert result["pending_tasks"] == 1 and [h["id"] for h in result["hits"]] == ["1"]
    assert statements
    assert not [
        s
        for s in statements
        if s.startswith(("SELECT count(*) FROM tasks", "SELECT (SELECT count"))
    ]
    service.drain()
    result = service.search("docs", q="kernel", prefix="false")
    assert result["pending_tasks"] == 0 and len(result["hits"]) == 2
