"""Document ids with `/`, `%`, `?`, `#` and spaces, through every route that names one."""

from __future__ import annotations

from urllib.parse import quote

from tests.helpers import Service

IDS = ["guides/install.html", "a%2Fb", "50% off", "what?#x", "dir/sub/file", "x/file", "x"]


def path(doc_id: str) -> str:
    return f"/collections/ids/documents/{quote(doc_id, safe='')}"


def test_any_id_is_one_path_segment_when_percent_encoded(service: Service) -> None:
    service.create_collection("ids", {"title": {"type": "text"}})
    service.add("ids", [{"id": doc_id, "title": "draft"} for doc_id in IDS])
    service.drain()
    for doc_id in IDS:
        response = service.client.get(path(doc_id))
        assert response.status_code == 200, (doc_id, response.text)
        assert response.json()["id"] == doc_id
        patched = service.client.patch(path(doc_id), json={"title": f"final {doc_id}"})
        assert patched.status_code == 202, (doc_id, patched.text)
    service.drain()
    hits = service.search("ids", q="final", limit=100)["hits"]
    assert sorted(h["id"] for h in hits) == sorted(IDS)  # each patched, none created
    assert all(h["document"]["title"] == f"final {h['id']}" for h in hits)
    assert service.client.delete(path("x/file")).status_code == 202
    service.drain()
    gone = service.client.get(path("x/file"))
    assert gone.status_code == 404 and "'x/file'" in gone.json()["error"]["message"]
    assert service.client.get(path("x")).status_code == 200
    # Not encoded, a `/` separates path segments: that names no document route.
    assert service.client.get("/collections/ids/documents/guides/install.html").status_code == 404
    metrics = service.client.get("/metrics").text
    assert 'route="/collections/{name}/documents/{doc_id}"' in metrics
