"""PostgreSQL: an index table made now holds its filter and facet columns before its
tsvectors. PostgreSQL finds a column by walking the ones before it, so a facet count
over thousands of matches then skips no kilobyte of text per row. Tables made before
keep their order; either way a field added later comes last and is filled and filtered
like the others."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from docuseek import collections
from docuseek.search.postgres.layout import table_name
from tests.conformance.test_end_to_end import ids
from tests.helpers import Service

FIELDS: dict[str, Any] = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "kind": {"type": "keyword", "facet": True},
    "size": {"type": "integer"},
}


def table_columns(service: Service, name: str) -> list[str]:
    collection = collections.load_cached(service.engine, name)
    schema, table = table_name(collection, collection.generation).split(".")
    with service.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = :s"
                " AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        )
        return [row[0] for row in rows]


def test_a_new_table_holds_its_filter_columns_before_its_tsvectors(service: Service) -> None:
    service.create_collection("docs", FIELDS, index_phrases=True)
    service.add(
        "docs",
        [
            {"id": "1", "title": "red tool", "body": "a tool", "kind": "a", "size": 3},
            {"id": "2", "title": "blue tool", "body": "a tool", "kind": "b", "size": 5},
        ],
    )
    service.drain()
    columns = table_columns(service, "docs")
    assert columns[:3] == ["id", "version", "live"]
    assert sorted(columns[3:5]) == ["f_kind", "f_size"]
    assert columns[5:] == ["tsv", "tsv_top", "impacts", "pairs"]
    page = service.search("docs", q="tool", filter="kind:b", facets="kind")
    assert ids(page) == ["2"]
    assert page["facets"]["kind"] == [{"value": "b", "count": 1}]

    service.create_collection("docs", {**FIELDS, "tag": {"type": "keyword"}}, index_phrases=True)
    service.add("docs", [{"id": "3", "title": "green tool", "body": "a tool", "tag": "new"}])
    service.drain()
    columns = table_columns(service, "docs")
    assert columns[-1] == "f_tag"  # after the tsvectors: a table's columns do not move
    assert ids(service.search("docs", q="tool", filter="tag:new")) == ["3"]
    assert service.search("docs", q="green")["hits"][0]["id"] == "3"
