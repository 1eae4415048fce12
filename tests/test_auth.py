"""Keys and scopes: each scope allowed and refused where it should be."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import BOOK_FIELDS, Service


def make_key(service: Service, scopes: list[str], collections: list[str]) -> TestClient:
    response = service.client.post(
        "/keys", json={"name": "k", "scopes": scopes, "collections": collections}
    )
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    return TestClient(service.client.app, headers={"Authorization": f"Bearer {key}"})


def test_missing_and_wrong_keys_get_401(service: Service) -> None:
    bare = TestClient(service.client.app)
    response = bare.get("/collections")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    wrong = TestClient(service.client.app, headers={"Authorization": "Bearer nope"})
    assert wrong.get("/collections").status_code == 401
    # Health, readiness and metrics need no key.
    assert bare.get("/healthz").status_code == 200
    assert bare.get("/readyz").json()["checks"] == {"database": "ok", "search": "ok"}
    assert bare.get("/metrics").status_code == 200


def test_scopes_and_collection_restrictions(service: Service) -> None:
    service.create_collection("a", BOOK_FIELDS)
    service.create_collection("b", BOOK_FIELDS)
    doc = [{"id": "1", "title": "hello world"}]
    search_a = make_key(service, ["search"], ["a"])
    write_a = make_key(service, ["write"], ["a"])
    both_all = make_key(service, ["search", "write"], ["*"])

    # search-only: may search and read documents of `a`, never write, never touch `b`.
    assert search_a.get("/collections/a/search", params={"q": "hello"}).status_code == 200
    refused = search_a.post("/collections/a/documents", json=doc)
    assert refused.status_code == 403 and "write" in refused.json()["error"]["message"]
    assert search_a.get("/collections/b/search", params={"q": "x"}).status_code == 403
    assert search_a.get("/collections/b").status_code == 403
    assert [c["name"] for c in search_a.get("/collections").json()] == ["a"]

    # write on `a`: may write and follow its tasks, not search, not write `b`.
    accepted = write_a.post("/collections/a/documents", json=doc)
    assert accepted.status_code == 202
    assert write_a.get(f"/tasks/{accepted.json()['task_id']}").status_code == 200
    assert write_a.get("/collections/a/search", params={"q": "x"}).status_code == 403
    assert write_a.post("/collections/b/documents", json=doc).status_code == 403
    other_task = service.add("b", doc)
    assert write_a.get(f"/tasks/{other_task}").status_code == 404  # as if it did not exist
    assert {t["collection"] for t in write_a.get("/tasks").json()["results"]} == {"a"}

    # Only admin manages collections and keys.
    for client in (search_a, write_a, both_all):
        assert client.put("/collections/c", json={"fields": BOOK_FIELDS}).status_code == 403
        assert client.delete("/collections/a").status_code == 403
        assert client.get("/keys").status_code == 403
        assert client.post("/keys", json={"name": "x", "scopes": ["admin"]}).status_code == 403
    assert both_all.post("/collections/b/documents", json=doc).status_code == 202


def test_keys_are_listed_without_secrets_and_can_be_revoked(service: Service) -> None:
    service.create_collection("a", BOOK_FIELDS)
    created = service.client.post("/keys", json={"name": "ci", "scopes": ["search"]}).json()
    listing = service.client.get("/keys").json()
    assert [k["name"] for k in listing] == ["ci"]
    assert "key" not in listing[0] and created["key"].startswith(listing[0]["prefix"])
    client = TestClient(service.client.app, headers={"Authorization": f"Bearer {created['key']}"})
    assert client.get("/collections/a/search").status_code == 200
    assert service.client.delete(f"/keys/{created['id']}").status_code == 204
    assert client.get("/collections/a/search").status_code == 401
    assert service.client.delete(f"/keys/{created['id']}").status_code == 404
    # Year 10000 in UTC: PostgreSQL stores it, Python cannot read it back (was a 500).
    late = {"name": "x", "scopes": ["search"], "expires_at": "9999-12-31T23:59:59-01:00"}
    response = service.client.post("/keys", json=late)
    assert response.status_code == 422 and "9999" in response.json()["error"]["message"]
    assert "x" not in [k["name"] for k in service.client.get("/keys").json()]
    bad = service.client.post("/keys", json={"name": "x", "scopes": ["root"]})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"][:2] == [
        "body",
        "scopes",
    ]
