"""Bad input: a 4xx with a JSON error naming the problem, and nothing stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.helpers import BOOK_FIELDS, Service


def stored_counts(service: Service) -> tuple[int, int, int]:
    with service.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("documents", "tasks", "outbox")
        )


def assert_error(response: Any, status: int, *needles: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    for needle in needles:
        assert needle in error["message"], error
    return error


def test_rejected_writes_store_nothing(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    post = service.client.post
    assert_error(
        post(
            "/collections/books/documents",
            content=b'[{"id": "1", "title": ',
            headers={"content-type": "application/json"},
        ),
        400,
        "not valid JSON",
    )
    assert_error(
        post(
            "/collections/books/documents",
            content=b'{"id": "1"}\n{oops}\n',
            headers={"content-type": "application/x-ndjson"},
        ),
        400,
        "line 2",
    )
    error = assert_error(
        post(
            "/collections/books/documents",
            json=[{"id": "1", "year": 2000}, {"id": "2", "year": "2001"}],
        ),
        422,
        "document 1",
        "'year'",
    )
    assert error["details"][0] == {
        "position": 1,
        "field": "year",
        "message": error["details"][0]["message"],
    }
    assert_error(post("/collections/books/documents", json=[{"id": 5}]), 422, "'id'")
    assert_error(post("/collections/books/documents", json=[{"title": "no id"}]), 422, "'id'")
    assert_error(
        post("/collections/books/documents", json=[{"id": "1", "price": "cheap"}]), 422, "price"
    )
    assert_error(
        post("/collections/books/documents", json=[{"id": "1", "in_print": 1}]), 422, "in_print"
    )
    assert_error(
        post("/collections/books/documents", json=[{"id": "1", "published": "yesterday"}]),
        422,
        "published",
    )
    assert_error(
        post("/collections/books/documents", json=[{"id": "1", "tags": ["a", 2]}]), 422, "tags"
    )
    assert_error(post("/collections/books/documents", json=["not an object"]), 422, "JSON object")
    assert_error(post("/collections/books/documents", json=[]), 422, "empty")
    assert_error(post("/collections/books/documents", json=42), 400, "JSON array")
    assert_error(post("/collections/nope/documents", json=[{"id": "1"}]), 404, "nope")
    # Oversized body: refused before it is read (Content-Length) and while it streams.
    big = [{"id": str(i), "body": "x" * 1000} for i in range(3000)]
    assert_error(post("/collections/books/documents", json=big), 413, "limit")

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 100_000

    assert_error(post("/collections/books/documents", content=chunks()), 413, "limit")
    assert stored_counts(service) == before


def test_bad_searches_get_4xx(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "hello"}])
    service.drain()
    get = service.client.get
    assert_error(
        get("/collections/books/search", params={"filter": "nope:1"}),
        422,
        "unknown filter field 'nope'",
    )
    assert_error(
        get("/collections/books/search", params={"filter": "title:hello"}), 422, "full text"
    )
    assert_error(
        get("/collections/books/search", params={"filter": "year>=abc"}), 422, "not an integer"
    )
    assert_error(
        get("/collections/books/search", params={"filter": "year:1.5"}), 422, "not an integer"
    )
    assert_error(
        get("/collections/books/search", params={"filter": "price<cheap"}), 422, "not a number"
    )
    assert_error(
        get("/collections/books/search", params={"filter": "gibberish"}), 422, "cannot parse"
    )
    assert_error(get("/collections/books/search", params={"facets": "title"}), 422, "not a facet")
    assert_error(get("/collections/books/search", params={"sort": "body"}), 422, "cannot sort")
    assert_error(
        get("/collections/books/search", params={"sort": "year:sideways"}), 422, "asc or desc"
    )
    assert_error(get("/collections/books/search", params={"cursor": "!!!"}), 422, "invalid cursor")
    assert_error(get("/collections/books/search", params={"limit": 0}), 422)
    assert_error(get("/collections/nope/search", params={"q": "x"}), 404, "nope")
    # A cursor from one query used with another.
    service.add("books", [{"id": str(i), "title": "hello again"} for i in range(5)])
    service.drain()
    cursor = get("/collections/books/search", params={"q": "hello", "limit": 1}).json()[
        "next_cursor"
    ]
    assert cursor
    assert_error(
        get("/collections/books/search", params={"q": "again", "cursor": cursor}),
        422,
        "different query",
    )
    # A cursor whose values were tampered with.
    import base64
    import json

    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["v"] = ["not-a-number", 1]
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    assert_error(
        get("/collections/books/search", params={"q": "hello", "cursor": forged}), 422, "cursor"
    )
    body_errors = service.client.post(
        "/collections/books/search", json={"q": "x", "filter": {"year": {"between": 1}}}
    )
    assert_error(body_errors, 422, "gte")
    assert_error(service.client.post("/collections/books/search", json={"bogus": 1}), 422, "bogus")


def test_bad_collection_schemas(service: Service) -> None:
    put = service.client.put
    assert_error(put("/collections/Bad Name", json={"fields": BOOK_FIELDS}), 422, "collection name")
    assert_error(put("/collections/x", json={"fields": {"a": {"type": "blob"}}}), 422)
    assert_error(
        put("/collections/x", json={"fields": {"a": {"type": "keyword", "weight": "A"}}}),
        422,
        "weight",
    )
    assert_error(
        put("/collections/x", json={"fields": {"a": {"type": "text", "facet": True}}}), 422, "facet"
    )
    assert_error(put("/collections/x", json={"fields": {}}), 422)
    assert_error(
        put("/collections/x", content=b"{", headers={"content-type": "application/json"}), 400
    )
    assert service.client.get("/collections").json() == []
    # Retyping a field that stored documents do not fit is refused, and changes nothing.
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "t", "isbn": "978-x"}])
    fields = {**BOOK_FIELDS, "isbn": {"type": "integer"}}
    assert_error(put("/collections/books", json={"fields": fields}), 409, "'1'")
    assert "isbn" not in service.client.get("/collections/books").json()["fields"]
