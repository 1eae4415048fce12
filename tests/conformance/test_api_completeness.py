"""Multi-search, partial updates, delete by filter and facet value search, on every backend
(the conformance conftest runs each test once per search backend)."""

from __future__ import annotations

import json
import threading
from typing import Any

from sqlalchemy import text

from tests.helpers import BOOK_FIELDS, Service


def stored_tasks(service: Service) -> int:
    with service.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM tasks")).scalar_one())


def doc(service: Service, name: str, doc_id: str) -> Any:
    response = service.client.get(f"/collections/{name}/documents/{doc_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_multi_search_checks_each_query_on_its_own(service: Service) -> None:
    for name in ("books", "secret"):
        service.create_collection(name, BOOK_FIELDS)
        service.add(name, [{"id": "1", "title": f"lazy {name}", "section": "a"}])
    service.drain()
    key = service.client.post(
        "/keys", json={"name": "page", "scopes": ["search"], "collections": ["books"]}
    ).json()["key"]
    queries = [
        {"collection": "books", "q": "lazy", "facets": ["section"]},
        {"collection": "secret", "q": "lazy"},
        {"collection": "books", "filter": {"nope": ["x"]}},
        {"collection": "books", "q": "lazy", "limit": 1, "highlight": False},
    ]
    response = service.client.post(
        "/multi-search", json={"queries": queries}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    first, secret, bad, last = response.json()["results"]
    assert [h["id"] for h in first["hits"]] == ["1"]
    assert first["facets"]["section"] == [{"value": "a", "count": 1}]
    assert "<mark>" in first["hits"][0]["highlights"]["title"][0]
    assert secret["status"] == 403 and secret["error"]["code"] == "forbidden"
    assert bad["status"] == 422 and "nope" in bad["error"]["message"]
    assert last["hits"][0]["highlights"] == {}

    admin = service.client.post(
        "/multi-search",
        json={"queries": [{"collection": c, "q": "lazy"} for c in ("secret", "missing")]},
    ).json()["results"]
    assert admin[0]["hits"][0]["document"]["title"] == "lazy secret"
    assert admin[1]["status"] == 404

    assert service.client.post("/multi-search", json={"queries": []}).status_code == 422
    unknown = service.client.post("/multi-search", json={"queries": [{"collection": "books",
                                                                      "qq": "x"}]})  # fmt: skip
    assert unknown.status_code == 422


def test_patch_merges_fields_into_the_stored_document(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "old title", "body": "kept", "year": 2001}])
    service.drain()
    version = doc(service, "books", "1")["version"]
    response = service.client.patch(
        "/collections/books/documents/1", json={"title": "new title", "year": None}
    )
    assert response.status_code == 202, response.text
    service.drain()
    assert service.task(response.json()["task_id"])["status"] == "succeeded"
    stored = doc(service, "books", "1")
    assert stored["document"] == {"id": "1", "title": "new title", "body": "kept", "year": None}
    assert stored["version"] > version
    assert service.search("books", q="new")["total"] == 1
    assert service.search("books", q="old")["total"] == 0

    tasks = stored_tasks(service)
    missing = service.client.patch("/collections/books/documents/2", json={"title": "x"})
    assert missing.status_code == 404 and "'2'" in missing.json()["error"]["message"]
    bad = service.client.patch("/collections/books/documents/1", json={"year": "soon"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "year"
    other_id = service.client.patch("/collections/books/documents/1", json={"id": "9"})
    assert other_id.status_code == 422
    assert stored_tasks(service) == tasks  # nothing of a rejected request is stored
    assert doc(service, "books", "1")["document"]["title"] == "new title"


def test_concurrent_patches_of_one_document_all_land(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "t"}])
    patches = [
        {"year": 1999},
        {"price": 9.5},
        {"section": "poetry"},
        {"in_print": True},
        {"body": "merged"},
        {"tags": ["a", "b"]},
    ]
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda p=p: statuses.append(
                service.client.patch("/collections/books/documents/1", json=p).status_code
            )
        )
        for p in patches
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [202] * len(patches)
    merged = doc(service, "books", "1")["document"]
    for patch in patches:
        assert patch.items() <= merged.items(), merged
    service.drain()
    assert service.search("books", filter="section:poetry")["total"] == 1


def test_batch_patch_merges_or_creates_all_or_nothing(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "one", "year": 1}, {"id": "2", "title": "two"}])
    response = service.client.patch(
        "/collections/books/documents",
        json=[{"id": "1", "year": 100}, {"id": "3", "title": "three"}, {"id": "1", "body": "b"}],
    )
    assert response.status_code == 202, response.text
    assert doc(service, "books", "1")["document"] == {
        "id": "1", "title": "one", "year": 100, "body": "b"
    }  # fmt: skip
    assert doc(service, "books", "3")["document"] == {"id": "3", "title": "three"}
    ndjson = "\n".join(json.dumps(p) for p in [{"id": "2", "section": "s"}]) + "\n"
    response = service.client.patch(
        "/collections/books/documents",
        content=ndjson,
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 202, response.text
    assert doc(service, "books", "2")["document"]["section"] == "s"

    tasks = stored_tasks(service)
    for body in ([{"id": "1", "year": 5}, {"id": "2", "year": "x"}], [{"title": "no id"}], []):
        rejected = service.client.patch("/collections/books/documents", json=body)
        assert rejected.status_code == 422, rejected.text
    assert stored_tasks(service) == tasks
    assert doc(service, "books", "1")["document"]["year"] == 100
    service.drain()
    assert service.search("books", filter="year>=100")["total"] == 1


def test_delete_by_filter_is_a_task(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    docs = [{"id": f"{i:03}", "section": "ab"[i % 2], "year": 2000 + i} for i in range(250)]
    service.add("books", docs)
    service.drain()
    response = service.client.post(
        "/collections/books/documents/delete", json={"filter": {"section": ["a"]}}
    )
    assert response.status_code == 202, response.text
    assert response.json()["received"] == 125
    service.drain()
    assert service.task(response.json()["task_id"])["status"] == "succeeded"
    assert service.search("books", filter="section:a")["total"] == 0
    assert service.search("books", filter="section:b")["total"] == 125
    assert service.client.get("/collections/books/documents/000").status_code == 404

    response = service.client.post(
        "/collections/books/documents/delete", json={"filter": ["section:b", "year<2010"]}
    )
    assert response.json()["received"] == 5
    service.drain()
    assert service.search("books")["total"] == 120

    tasks = stored_tasks(service)
    for body in ({"filter": {}}, {"filter": {"nope": ["x"]}}, {"filter": ["year<"]}, {}):
        rejected = service.client.post("/collections/books/documents/delete", json=body)
        assert rejected.status_code == 422, rejected.text
    assert stored_tasks(service) == tasks


def test_facet_value_search_by_prefix(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    tags = [["linux", "lisp"], ["linux"], ["Lua", "python"], ["linux", "lisp"], []]
    service.add("books", [{"id": str(i), "tags": t, "section": "x"} for i, t in enumerate(tags)])
    service.drain()

    def values(field: str, **params: Any) -> Any:
        response = service.client.get(f"/collections/books/facets/{field}", params=params)
        assert response.status_code == 200, response.text
        return response.json()["values"]

    assert values("tags", q="li") == [{"value": "linux", "count": 3}, {"value": "lisp", "count": 2}]
    assert [v["value"] for v in values("tags", q="L")] == ["linux", "lisp", "Lua"]
    assert values("tags", q="li", limit=1) == [{"value": "linux", "count": 3}]
    assert values("tags") == values("tags", q="")[:10]
    assert values("section", q="x") == [{"value": "x", "count": 5}]
    assert values("tags", q="zzz") == []
    not_facet = service.client.get("/collections/books/facets/title", params={"q": "a"})
    assert not_facet.status_code == 422 and "section, tags" in not_facet.text
    missing = service.client.get("/collections/nope/facets/tags")
    assert missing.status_code == 404
