"""Input PostgreSQL cannot store (a NUL character, a lone surrogate, an infinite number,
an id beyond bigint): a 422 naming where it is, nothing stored. Each of these was a 500,
found by fuzzing the API from its OpenAPI schema (storable.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import BOOK_FIELDS, Service
from tests.test_bad_input import assert_error, stored_counts

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        (rb'[{"id": "1", "title": "a \u0000 b"}]', "title", "NUL character"),
        (rb'[{"id": "a\u0000b"}]', "id", "NUL character"),
        (rb'[{"id": "1", "tags": ["ok", "x\u0000"]}]', "tags", "'tags[1]'"),
        (rb'[{"id": "1", "extra\u0000": 1}]', "extra\x00", "(a key)"),
        (rb'[{"id": "1", "title": "\ud800"}]', "title", "lone surrogate"),
        (rb'[{"id": "1", "meta": {"deep": [1e400]}}]', "meta", "'meta.deep[0]': is not a finite"),
        (rb'[{"id": "1", "meta": NaN}]', "meta", "not a finite number"),
    ],
)
def test_documents_postgres_cannot_store_are_rejected(
    service: Service, body: bytes, field: str, needle: str
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    error = assert_error(
        service.client.post("/collections/books/documents", content=body, headers=JSON),
        422,
        "document 0",
        needle,
    )
    assert error["details"][0]["field"] == field
    # The same document in NDJSON takes the same path.
    ndjson = body.strip(b"[]")
    assert_error(
        service.client.post(
            "/collections/books/documents",
            content=b'{"id": "fine"}\n' + ndjson + b"\n",
            headers={"content-type": "application/x-ndjson"},
        ),
        422,
        "document 1",
        needle,
    )
    assert stored_counts(service) == before


def test_the_text_backslash_u0000_is_stored_and_found(service: Service) -> None:
    """The fast check looks for json's spelling of a NUL; the text itself must pass."""
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "escapes like \\u0000 in C"}])
    service.drain()
    hits = service.search("books", q="escapes")["hits"]
    assert [h["document"]["title"] for h in hits] == ["escapes like \\u0000 in C"]


@pytest.mark.parametrize(
    ("method", "url", "needle"),
    [
        ("GET", "/collections/books/search?q=a%00b", "query parameter 'q'"),
        ("GET", "/collections/books/search?q=a&filter=section:x%00", "query parameter 'filter'"),
        ("GET", "/collections/bo%00ks/search?q=a", "path parameter 'name'"),
        ("GET", "/collections/books/documents/a%00b", "path parameter 'doc_id'"),
        ("DELETE", "/collections/books/documents/a%00b", "path parameter 'doc_id'"),
        ("GET", "/tasks?collection=bo%00ks", "query parameter 'collection'"),
        ("GET", "/tasks?before=-1007954737667334471680", "before"),
        ("GET", "/tasks?before=9223372036854775808", "before"),
    ],
)
def test_parameters_postgres_cannot_take_are_rejected(
    service: Service, method: str, url: str, needle: str
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    assert_error(service.client.request(method, url), 422, needle)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"q": "a\x00"}, "'q' contains a NUL"),
        ({"q": "a", "filter": {"section": ["ok", "x\x00"]}}, "'filter.section[1]'"),
        ({"q": "a", "cursor": "\x00"}, "'cursor'"),
    ],
)
def test_search_bodies_postgres_cannot_take_are_rejected(
    service: Service, body: dict[str, Any], needle: str
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    assert_error(service.client.post("/collections/books/search", json=body), 422, needle)


def test_key_with_a_nul_is_rejected_and_not_stored(service: Service) -> None:
    def keys() -> int:
        with service.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one())

    before = keys()
    for body in (
        {"name": "ci\x00", "scopes": ["search"]},
        {"name": "ci", "scopes": ["search"], "collections": ["books", "x\x00"]},
    ):
        assert_error(service.client.post("/keys", json=body), 422, "NUL character")
    assert keys() == before


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_is_bounded_where_every_read_path_copes(service: Service) -> None:
    """Deep nesting was a 500 on the way in (json's parser gives up near 1,000 levels)
    and, worse, a stored document ~300 levels deep was a 500 for every GET and search
    that returned it. Documents may nest MAX_DEPTH (64) levels, the document included."""
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    too_deep = f'[{{"id": "2", "x": {nested(64)}}}]'.encode()
    assert_error(
        service.client.post("/collections/books/documents", content=too_deep, headers=JSON),
        422,
        "nested deeper than 64 levels",
    )
    for content_type, body in (
        ("application/json", f'[{{"id": "3", "x": {nested(5000)}}}]'),
        ("application/x-ndjson", f'{{"id": "3", "x": {nested(5000)}}}\n'),
    ):
        response = service.client.post(
            "/collections/books/documents",
            content=body.encode(),
            headers={"content-type": content_type},
        )
        assert_error(response, 400, "nested too deeply")
    assert stored_counts(service) == before

    deepest = f'[{{"id": "1", "x": {nested(63)}}}]'.encode()
    response = service.client.post("/collections/books/documents", content=deepest, headers=JSON)
    assert response.status_code == 202, response.text
    service.drain()
    assert service.client.get("/collections/books/documents/1").status_code == 200
    assert [hit["id"] for hit in service.search("books")["hits"]] == ["1"]

    filter_body = {"q": "a", "filter": {"section": [[[]]]}}
    for _ in range(70):
        filter_body = {"q": "a", "filter": {"section": [filter_body["filter"]["section"]]}}
    assert_error(
        service.client.post("/collections/books/search", json=filter_body),
        422,
        "nested deeper than 64 levels",
    )
