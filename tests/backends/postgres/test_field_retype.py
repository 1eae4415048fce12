"""A collection's field changes type in place on PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.conformance.test_end_to_end import ids
from tests.helpers import Service


def test_a_field_changes_type_in_place_on_postgres(service: Service) -> None:
    """The PostgreSQL backend retypes a column and indexes every document again (OpenSearch
    refuses the change instead: test_opensearch_faults.py)."""
    fields: dict[str, Any] = {"title": {"type": "text"}, "code": {"type": "keyword"}}
    service.create_collection("docs", {**fields, "n": {"type": "integer"}})
    service.add("docs", [{"id": "1", "title": "first", "code": "spelled in words", "n": 3}])
    service.drain()
    assert service.search("docs", q="words")["total"] == 0  # a keyword is not full text
    service.create_collection("docs", {**fields, "code": {"type": "text"}, "n": {"type": "float"}})
    service.drain()
    assert ids(service.search("docs", q="words")) == ["1"]
    assert ids(service.search("docs", filter="n>=2.5")) == ["1"]
