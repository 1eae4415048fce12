"""Hardening: bad input that used to reach the database or the indexer is a 4xx; task ids
leak nothing; every response carries a request id and the security headers; whatever
escapes the routes is JSON; a database that cannot be reached is a JSON 503 everywhere."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from docuseek import worker_http
from docuseek.api import middleware
from docuseek.api.app import create_app
from docuseek.api.security_headers import CONTENT_SECURITY_POLICY
from docuseek.db import make_engine
from docuseek.search.postgres import PostgresBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, Service, free_port
from tests.test_auth import make_key
from tests.test_bad_input import assert_error, stored_counts

HUGE = 10**400  # a JSON integer beyond a double's range


def post_raw(service: Service, path: str, body: str, ndjson: bool = False) -> Any:
    content_type = "application/x-ndjson" if ndjson else "application/json"
    return service.client.post(path, content=body.encode(), headers={"content-type": content_type})


def test_a_float_field_refuses_an_integer_beyond_a_double(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    docs = [{"id": "ok", "price": 1}, {"id": "big", "price": HUGE}]
    error = assert_error(
        post_raw(service, "/collections/books/documents", json.dumps(docs)),
        422,
        "document 1",
        "'price'",
        "double",
    )
    assert error["details"][0]["position"] == 1 and error["details"][0]["field"] == "price"
    assert stored_counts(service) == before
    # The largest integers a double holds are still accepted, and indexed.
    task = service.add("books", [{"id": "max", "price": 2**1023}])
    service.drain()
    assert service.task(task)["status"] == "succeeded"
    # The same number as a search filter, in a body and in a query string.
    for cond in (HUGE, {"gte": HUGE}, [HUGE]):
        response = post_raw(
            service,
            "/collections/books/search",
            json.dumps({"filter": {"price": cond}}),
        )
        assert_error(response, 422, "price")
    response = service.client.get("/collections/books/search", params={"filter": f"price>={HUGE}"})
    assert response.status_code == 422, response.text


def test_an_integer_beyond_the_bigint_range_is_refused(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    for value in (2**63, -(2**63) - 1):
        response = post_raw(
            service, "/collections/books/documents", json.dumps([{"id": "x", "year": value}])
        )
        assert_error(response, 422, "'year'", "64-bit")
        response = post_raw(
            service, "/collections/books/search", json.dumps({"filter": {"year": value}})
        )
        assert_error(response, 422, "year")


def test_an_integer_too_long_to_parse_is_a_422(service: Service) -> None:
    """More than 4,300 digits: Python's int-string limit, in any field, JSON or NDJSON."""
    service.create_collection("books", BOOK_FIELDS)
    before = stored_counts(service)
    digits = "9" * 5000
    for body, ndjson in (
        (f'[{{"id": "a", "year": {digits}}}]', False),
        (f'[{{"id": "a", "unmapped": {digits}}}]', False),
        (f'{{"id": "a"}}\n{{"id": "b", "price": {digits}}}\n', True),
    ):
        error = assert_error(
            post_raw(service, "/collections/books/documents", body, ndjson), 422, "too long"
        )
        assert error["code"] == "invalid_input"
    assert stored_counts(service) == before


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decoded(cursor: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return result


@pytest.mark.parametrize("sort", ["year", "published:desc", "", "_id", "in_print"])
def test_forged_cursor_values_are_a_422(service: Service, sort: str) -> None:
    """A cursor with the right fingerprint and values of the wrong kind, for a sorted and
    for a relevance-ordered query."""
    service.create_collection("books", BOOK_FIELDS)
    service.add(
        "books",
        [
            {
                "id": f"d{i}",
                "title": "hello",
                "year": 2000 + i,
                "in_print": i % 2 == 0,
                "published": f"2020-01-0{i + 1}",
            }
            for i in range(4)
        ],
    )
    service.drain()
    params = {"q": "hello", "limit": 1, **({"sort": sort} if sort else {})}
    page = service.search("books", **params)
    assert page["next_cursor"]
    real = _decoded(page["next_cursor"])
    n = len(real["v"])
    assert service.search("books", **params, cursor=page["next_cursor"])["hits"]
    nested: Any = 1
    for _ in range(5000):
        nested = [nested]
    forgeries: list[Any] = [
        [{"a": 1}] * n,
        [[1]] * n,
        [True] * n,  # a bool for an integer, a date, a score or an id
        ["\ud800"] * n,
        ["x\x00"] * n,
        [2**70] * n,
        [1.5] * n,
        [],
        [None] * (n + 1),
    ]
    # One value of the wrong kind where the real cursor has the field's value (after the
    # flag that says whether the document has one).
    wrong = {"year": True, "published:desc": "not a date", "in_print": 1}.get(sort)
    if wrong is not None:
        forgeries.append([real["v"][0], wrong, *real["v"][2:]])
    for values in forgeries:
        forged = _cursor({"f": real["f"], "v": values})
        response = service.client.get(
            "/collections/books/search", params={**params, "cursor": forged}
        )
        assert_error(response, 422, "cursor")
        response = service.client.post(
            "/collections/books/search", json={**_body(params), "cursor": forged}
        )
        assert_error(response, 422, "cursor")
    # Nested 5,000 levels deep (json's parser would recurse until RecursionError), and
    # cursors that are not base64 of JSON at all.
    deep = base64.urlsafe_b64encode(b'{"f": "x", "v": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    for bad in (deep.decode(), "!!!", "AAAA", "e30", "x" * 100_000, "\ud800"):
        # json.dumps escapes the lone surrogate, as a client's JSON would.
        body = json.dumps({**_body(params), "cursor": bad})
        response = post_raw(service, "/collections/books/search", body)
        assert response.status_code == 422, response.text


def _body(params: dict[str, Any]) -> dict[str, Any]:
    body = dict(params)
    if "sort" in body:
        body["sort"] = [body["sort"]]
    return body


def test_a_task_of_another_collection_looks_missing(service: Service) -> None:
    service.create_collection("a", BOOK_FIELDS)
    service.create_collection("secret-b", BOOK_FIELDS)
    write_a = make_key(service, ["write", "search"], ["a"])
    own = service.add("a", [{"id": "1"}])
    other = service.add("secret-b", [{"id": "1"}])
    missing = other + 1000
    assert write_a.get(f"/tasks/{own}").status_code == 200
    hidden = write_a.get(f"/tasks/{other}")
    absent = write_a.get(f"/tasks/{missing}")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == json.loads(absent.text.replace(str(missing), str(other)))
    assert "secret-b" not in hidden.text
    # Listing by a collection the key may not use: as for a collection without tasks.
    for name in ("secret-b", "no-such-collection"):
        listing = write_a.get("/tasks", params={"collection": name})
        assert listing.status_code == 200
        assert listing.json() == {"results": [], "next_before": None}
    assert [t["id"] for t in write_a.get("/tasks").json()["results"]] == [own]


def test_keys_refuse_invalid_collection_names(service: Service) -> None:
    before = len(service.client.get("/keys").json())
    for names in (["NOT VALID NAME!"], ["a", "b/c"], [""], ["*x"]):
        response = service.client.post(
            "/keys", json={"name": "k", "scopes": ["search"], "collections": names}
        )
        assert_error(response, 422, "collection name")
    assert len(service.client.get("/keys").json()) == before
    for names in (["*"], ["a", "b-2_c"]):
        response = service.client.post(
            "/keys", json={"name": "k", "scopes": ["search"], "collections": names}
        )
        assert response.status_code == 201, response.text


SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": CONTENT_SECURITY_POLICY,
}


def test_every_response_has_a_request_id_and_the_security_headers(service: Service) -> None:
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none';"
        " base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    service.create_collection("books", BOOK_FIELDS)
    app = service.client.app
    anonymous = TestClient(app)
    big = b"[" + b" " * (3 * 1024 * 1024) + b"]"
    responses = {
        "search": service.client.get("/collections/books/search", params={"q": "x"}),
        "write": service.client.post("/collections/books/documents", json=[{"id": "1"}]),
        "422": service.client.post("/collections/books/documents", json=[{"id": 1}]),
        "404": service.client.get("/collections/none"),
        "405": service.client.patch("/collections/books"),
        "413": service.client.post("/collections/books/documents", content=big),
        "401": anonymous.get("/collections"),
        "healthz": anonymous.get("/healthz"),
        "metrics": anonymous.get("/metrics"),
        "openapi": anonymous.get("/openapi.json"),
    }
    ids = set()
    for what, response in responses.items():
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (what, name)
        request_id = response.headers.get("x-request-id")
        assert request_id and len(request_id) >= 16, what
        ids.add(request_id)
        authenticated = what not in ("401", "healthz", "metrics", "openapi")
        if authenticated:
            assert response.headers.get("cache-control") == "no-store", what
        else:
            assert "no-store" not in response.headers.get("cache-control", ""), what
    assert len(ids) == len(responses)  # generated per request
    # A sane client id is kept; anything else is replaced.
    kept = anonymous.get("/healthz", headers={"X-Request-ID": "client-42.a:b"})
    assert kept.headers["x-request-id"] == "client-42.a:b"
    for insane in ("has space", "x" * 200, "semi;colon", ""):
        replaced = anonymous.get("/healthz", headers={"X-Request-ID": insane})
        assert replaced.headers["x-request-id"] not in (insane, "")


def test_an_unexpected_exception_is_a_json_500_with_one_logged_traceback(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No route of the service is known to raise unexpectedly: this test adds one that
    does, to the app under test only."""
    app = service.client.app

    @app.get("/test-only/boom")  # type: ignore[attr-defined, untyped-decorator]
    def boom() -> None:
        structlog.get_logger("test").info("about to fail")
        raise RuntimeError("kaboom")

    monkeypatch.setattr(middleware, "log", structlog.get_logger("docuseek.api.test"))
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        client = TestClient(app, raise_server_exceptions=False)
        response = client.get("/test-only/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error", "request_id": "req-boom-1"}
    }
    assert "kaboom" not in response.text
    assert response.headers["x-request-id"] == "req-boom-1"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    # Every line of the request carries its id; the failure is one line with the traceback.
    assert [e["request_id"] for e in logs] == ["req-boom-1", "req-boom-1"]
    errors = [e for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1 and errors[0].get("exc_info") is True


def test_an_unreachable_database_is_a_json_503_on_every_endpoint(
    settings: Settings, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every route, with the admin key of the environment (no database round trip) and
    with a stored key (whose lookup is itself a database round trip)."""
    service.create_collection("books", BOOK_FIELDS)
    stored = make_key(service, ["admin"], ["*"]).headers["authorization"]
    port = free_port()
    dead = make_engine(f"postgresql://nobody@127.0.0.1:{port}/none", pool_size=1)
    app = create_app(settings, dead, PostgresBackend(dead))
    monkeypatch.setattr(middleware, "log", structlog.get_logger("docuseek.api.test"))
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/collections", {}),
        ("GET", "/collections/books", {}),
        ("PUT", "/collections/books", {"json": {"fields": BOOK_FIELDS}}),
        ("DELETE", "/collections/books", {}),
        ("POST", "/collections/books/documents", {"json": [{"id": "1"}]}),
        ("GET", "/collections/books/documents/1", {}),
        ("DELETE", "/collections/books/documents/1", {}),
        ("GET", "/collections/books/search", {"params": {"q": "x"}}),
        ("POST", "/collections/books/search", {"json": {"q": "x"}}),
        ("GET", "/tasks", {}),
        ("GET", "/tasks/1", {}),
        ("GET", "/keys", {}),
        ("POST", "/keys", {"json": {"name": "k", "scopes": ["search"]}}),
        ("DELETE", "/keys/1", {}),
    ]
    with structlog.testing.capture_logs() as logs:
        for key in (f"Bearer {ADMIN_KEY}", stored):
            client = TestClient(app, headers={"Authorization": key}, raise_server_exceptions=False)
            for method, path, kwargs in requests:
                response = client.request(method, path, **kwargs)
                assert response.status_code == 503, (method, path, response.text)
                error = response.json()["error"]
                assert error["code"] in ("database_unavailable", "search_unavailable"), error
                assert str(port) not in response.text and "nobody" not in response.text
    assert not [e for e in logs if e.get("exc_info")]  # one line each, no traceback
    dead.dispose()


def test_the_metrics_server_never_takes_the_worker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its port taken (and every one it may try), or a host it cannot bind: no server,
    and no exception for the worker to die of."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(worker_http, "PORT_ATTEMPTS", 1)
        assert worker_http.start_metrics_server("127.0.0.1", port) is None
    assert worker_http.start_metrics_server("192.0.2.1", free_port()) is None  # not ours
