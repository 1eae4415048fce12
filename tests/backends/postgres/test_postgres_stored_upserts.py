"""The PostgreSQL backend reads an upsert's body from `documents` itself (IndexOp.upsert_stored):
the worker hands it ids only. These tests hold that path to the one with the body in the op."""

from __future__ import annotations

import re
from typing import Any

import pytest
from opensearchpy import OpenSearch
from sqlalchemy import text

from docuseek import collections
from docuseek.schema import Collection
from docuseek.search.base import IndexOp
from docuseek.search.opensearch import OpenSearchBackend
from docuseek.search.postgres.layout import table_name
from tests.helpers import BOOK_FIELDS, Service

DOCS: list[dict[str, Any]] = [
    {
        "id": "1",
        "title": "The lazy fox",
        "body": "jumps over the quick dog",
        "section": "animals",
        "tags": ["fox", "dog"],
        "year": 1999,
        "price": 9.5,
        "in_print": True,
        "published": "1999-04-01T00:00:00Z",
    },
    {"id": "2", "title": "Gardening", "section": ["plants", "home"], "year": 2005},
    {"id": "3", "body": "only a body, no title", "tags": "misc"},
]


def index_rows(service: Service, collection: Collection, generation: int) -> list[tuple[Any, ...]]:
    with service.engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT id, version, live, tsv::text, tsv_top::text, f_section, f_tags,"
                    f" f_year, f_price, f_in_print, f_published"
                    f" FROM {table_name(collection, generation)} ORDER BY id"
                )
            )
        ]


def test_stored_upserts_write_the_same_rows_as_upserts_with_the_body(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", DOCS)
    service.drain()  # the worker: generation 1 through the stored path
    collection = collections.load_cached(service.engine, "books")
    with service.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT id, version, body FROM documents WHERE collection_id = :c ORDER BY id"),
            {"c": collection.id},
        ).all()
    service.backend.ensure_collection(collection, 2)
    inline = [IndexOp(doc_id, version, body) for doc_id, version, body in stored]
    assert service.backend.index_batch(collection, 2, inline).failed == {}

    rows = index_rows(service, collection, 1)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert rows == index_rows(service, collection, 2)
    assert rows[0][5:] == (["animals"], ["fox", "dog"], 1999, 9.5, True, rows[0][10])
    assert re.search(r"'lazi':\d+A", rows[0][3]) and re.search(r"'quick':\d+C", rows[0][3])


def test_a_stored_upsert_reads_its_own_collection_at_the_current_version(
    service: Service,
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.create_collection("films", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "alpha"}])
    service.add("films", [{"id": "1", "title": "omega"}])
    service.drain()
    assert [h["id"] for h in service.search("books", q="alpha")["hits"]] == ["1"]
    assert service.search("books", q="omega")["hits"] == []
    assert [h["id"] for h in service.search("films", q="omega")["hits"]] == ["1"]

    books = collections.load_cached(service.engine, "books")
    service.add("books", [{"id": "1", "title": "beta"}])  # not drained: the outbox holds it
    # An op naming an older version still writes the stored, current one.
    assert service.backend.index_batch(books, 1, [IndexOp.upsert_stored("1", 1)]).failed == {}
    assert [h["id"] for h in service.search("books", q="beta")["hits"]] == ["1"]
    assert service.search("books", q="alpha")["hits"] == []


def test_a_stored_upsert_of_a_document_gone_from_postgresql_writes_nothing(
    service: Service,
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "alpha"}])
    service.drain()
    books = collections.load_cached(service.engine, "books")
    ops = [IndexOp.upsert_stored("ghost", 7), IndexOp.upsert_stored("1", 1)]
    assert service.backend.index_batch(books, 1, ops).failed == {}
    assert [r[0] for r in index_rows(service, books, 1)] == ["1"]


def test_a_newer_indexed_version_is_not_replaced_by_an_older_stored_one(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "alpha"}])
    service.drain()
    books = collections.load_cached(service.engine, "books")
    newer = IndexOp("1", 10**9, {"title": "from the future"})
    assert service.backend.index_batch(books, 1, [newer]).failed == {}
    assert service.backend.index_batch(books, 1, [IndexOp.upsert_stored("1", 1)]).failed == {}
    assert [h["id"] for h in service.search("books", q="future")["hits"]] == ["1"]
    assert service.search("books", q="alpha")["hits"] == []


def test_the_opensearch_backend_refuses_a_stored_upsert() -> None:
    # No request is made: the op is refused while the bulk body is built.
    backend = OpenSearchBackend(OpenSearch(hosts=["http://127.0.0.1:9"]), "stored")
    books = Collection(id=1, name="books", fields={}, generation=1)
    with pytest.raises(ValueError, match="needs each upsert's document"):
        backend.index_batch(books, 1, [IndexOp.upsert_stored("1", 1)])
    assert not backend.reads_stored_documents


def physical_order(service: Service, collection: Collection, generation: int) -> list[str]:
    with service.engine.connect() as conn:
        return list(
            conn.execute(
                text(f"SELECT id FROM {table_name(collection, generation)} ORDER BY ctid")
            ).scalars()
        )


def test_a_batch_is_written_grouped_by_facet_values_on_both_paths(service: Service) -> None:
    """Rows sharing facet values share heap pages (Layout.cluster_columns): a facet filter
    then reads fewer pages. Facets by name (section, then tags), then id."""
    rows = [("b", "t1"), ("a", "t2"), ("c", "t1"), ("a", "t1"), ("b", "t2"), ("a", "t2")]
    batch = [
        {"id": f"d{i}", "title": "x", "section": section, "tags": [tag]}
        for i, (section, tag) in enumerate(rows)
    ]
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", batch)
    service.drain()  # the worker's stored path, one batch
    collection = collections.load_cached(service.engine, "books")
    expected = ["d3", "d1", "d5", "d0", "d4", "d2"]  # a/t1, a/t2 (by id), b/t1, b/t2, c/t1
    assert physical_order(service, collection, 1) == expected

    service.backend.ensure_collection(collection, 2)
    inline = [IndexOp(d["id"], 1, d) for d in reversed(batch)]
    assert service.backend.index_batch(collection, 2, inline).failed == {}
    assert physical_order(service, collection, 2) == expected
