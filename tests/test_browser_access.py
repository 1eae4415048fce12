"""What a web page needs: CORS preflights, expiring keys, strict key bodies, and failed
authentications limited per client address without holding up valid keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from docuseek.api.app import create_app
from docuseek.api.ratelimit import FailureLimiter
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, Service

ORIGIN = "https://shop.example.com"


@pytest.fixture
def make_client(
    settings: Settings, engine: Engine, backend: SearchBackend
) -> Iterator[type[TestClient]]:
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        app = create_app(settings.model_copy(update=overrides), engine, backend)
        client = TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        opened.append(client.__enter__())
        return client

    yield make  # type: ignore[misc]
    for client in opened:
        client.__exit__(None, None, None)


PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def test_no_cors_headers_unless_configured(service: Service) -> None:
    preflight = service.client.options("/collections/books/search", headers=PREFLIGHT)
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


def test_preflight_and_cors_headers_for_configured_origins(make_client: type[TestClient]) -> None:
    client = make_client(cors_origins=f" {ORIGIN} , https://other.example.com")
    client.put("/collections/books", json={"fields": BOOK_FIELDS})
    preflight = client.options("/collections/books/search", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "POST" in preflight.headers["access-control-allow-methods"]

    search = client.get("/collections/books/search", headers={"Origin": ORIGIN})
    assert search.status_code == 200
    assert search.headers["access-control-allow-origin"] == ORIGIN
    # An error must be readable by the page too.
    denied = client.get(
        "/collections/books/search", headers={"Origin": ORIGIN, "Authorization": "Bearer nope"}
    )
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == ORIGIN

    stranger = client.options(
        "/collections/books/search", headers={**PREFLIGHT, "Origin": "https://evil.example"}
    )
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers


def test_expiring_keys(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    created = service.client.post(
        "/keys",
        json={"name": "page", "scopes": ["search"], "collections": ["books"],
              "expires_at": expires.isoformat()},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert datetime.fromisoformat(created.json()["expires_at"]) == expires.replace(
        microsecond=expires.microsecond
    )
    listed = {k["id"]: k for k in service.client.get("/keys").json()}
    assert listed[created.json()["id"]]["expires_at"] is not None
    headers = {"Authorization": f"Bearer {created.json()['key']}"}
    assert service.client.get("/collections/books/search", headers=headers).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    late = service.client.get("/collections/books/search", headers=headers)
    assert late.status_code == 401
    assert late.json()["error"]["code"] == "unauthorized"
    assert late.json()["error"]["message"].startswith("key expired at ")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "k", "scopes": ["search"], "expire_at": "2100-01-01T00:00:00Z"}, "expire_at"),
        ({"name": "k", "scopes": ["search"], "expires_at": "2000-01-01T00:00:00Z"}, "past"),
        ({"name": "k", "scopes": ["search"], "expires_at": "2100-01-01T00:00:00"}, "timezone"),
    ],
)
def test_key_bodies_are_strict(service: Service, body: dict[str, object], where: str) -> None:
    before = service.client.get("/keys").json()
    response = service.client.post("/keys", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert where in response.text
    assert service.client.get("/keys").json() == before


def test_failed_authentications_are_limited_per_address(make_client: type[TestClient]) -> None:
    client = make_client(auth_failures_per_minute=3)
    bad = {"Authorization": "Bearer dsk_guess"}
    assert [client.get("/collections", headers=bad).status_code for _ in range(3)] == [401] * 3
    limited = client.get("/collections", headers=bad)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(limited.headers["retry-after"]) <= 20  # 3 a minute: one back every 20 s
    assert client.get("/collections", headers={"Authorization": ""}).status_code == 429  # no key
    # A valid key from the same address is served at once.
    started = time.perf_counter()
    assert client.get("/collections").status_code == 200
    assert time.perf_counter() - started < 1


def test_failure_buckets_are_per_address_and_refill() -> None:
    limiter = FailureLimiter(per_minute=60)  # one token back per second
    for _ in range(60):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 1
    assert limiter.retry_after("10.0.0.2") is None
    time.sleep(1.05)
    assert limiter.retry_after("10.0.0.1") is None


def test_failure_buckets_stay_bounded() -> None:
    limiter = FailureLimiter(per_minute=1, max_addresses=2)
    for address in ("a", "b", "c"):
        limiter.failed(address)
    assert limiter.retry_after("a") is None  # forgotten: the oldest of three
    assert limiter.retry_after("c") is not None


def test_the_new_routes_have_openapi_entries(service: Service) -> None:
    """Each route added for the client and the browser has an entry for the API reference,
    with the errors it can return (the rules the reference's own test applies)."""
    from docuseek.api.openapi_extra import EXTRA_OPERATIONS

    schema = service.client.get("/openapi.json").json()
    for (method, path), entry in EXTRA_OPERATIONS.items():
        op = schema["paths"][path][method.lower()]
        errors = set(entry["errors"])
        assert len(entry["summary"]) > 3 and len(entry["description"]) > 20
        assert {401, 403, 422} <= errors, (method, path)
        if "{" in path:
            assert 404 in errors, (method, path)
        if "requestBody" in op:
            assert {400, 413} <= errors and entry.get("request") is not None, (method, path)
        success = next(body for code, body in op["responses"].items() if code.startswith("2"))
        if "application/json" in success.get("content", {}):  # a file download has none
            assert entry.get("response") is not None, (method, path)
