"""`docuseek.client` against a real server: uvicorn on a free port, a real worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from docuseek.client import ApiError, Client, ServerUnreachable, TaskTimeout, UploadProgress
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, free_port
from tests.live_server import LiveServer


@pytest.fixture
def live(settings: Settings, engine: Engine, backend: SearchBackend) -> Iterator[LiveServer]:
    server = LiveServer(settings, engine, backend).start()
    yield server
    server.stop()


@pytest.fixture
def ds(live: LiveServer) -> Iterator[Client]:
    with Client(live.url, ADMIN_KEY) as client:
        yield client


def books(n: int) -> list[dict[str, object]]:
    return [
        {"id": f"b{i:03}", "title": f"book {i}", "body": "lazy fox", "section": f"s{i % 3}"}
        for i in range(n)
    ]


def test_collections_lifecycle(ds: Client) -> None:
    created = ds.create_collection("books", BOOK_FIELDS)
    assert created["name"] == "books"
    assert "title" in ds.get_collection("books")["fields"]
    ds.update_collection("books", {**BOOK_FIELDS, "isbn": {"type": "keyword"}})
    assert "isbn" in ds.get_collection("books")["fields"]
    assert [c["name"] for c in ds.list_collections()] == ["books"]
    ds.delete_collection("books")
    with pytest.raises(ApiError) as caught:
        ds.get_collection("books")
    assert (caught.value.status, caught.value.code) == (404, "not_found")


def test_batches_progress_tasks_and_cursor_paging(ds: Client) -> None:
    ds.create_collection("books", BOOK_FIELDS)
    seen: list[UploadProgress] = []
    accepted = ds.add_documents("books", iter(books(25)), batch_size=10, on_progress=seen.append)
    assert [p.documents for p in seen] == [10, 20, 25]
    assert [p.batches for p in seen] == [1, 2, 3]
    assert [a["received"] for a in accepted] == [10, 10, 5]
    for a in accepted:
        task = ds.wait_for_task(a["task_id"], timeout=30)
        assert task["status"] == "succeeded", task
    listed = ds.list_tasks(collection="books", status="succeeded")["results"]
    assert {t["id"] for t in listed} == {a["task_id"] for a in accepted}

    page = ds.search("books", "lazy", filter={"section": ["s1"]}, facets=["section"], limit=3)
    assert page["total"] == 8
    assert page["facets"]["section"] == [{"value": "s1", "count": 8}]
    assert "<mark>" in page["hits"][0]["highlights"]["body"][0]

    ids = [hit["id"] for hit in ds.iter_search("books", "fox", sort=["_id"], page_size=7)]
    assert ids == [f"b{i:03}" for i in range(25)]


def test_ndjson_file_streams_with_byte_progress(ds: Client, tmp_path: Path) -> None:
    ds.create_collection("books", BOOK_FIELDS)
    path = tmp_path / "books.ndjson"
    path.write_text("".join(json.dumps(d) + "\n\n" for d in books(12)))
    seen: list[UploadProgress] = []
    accepted = ds.add_ndjson("books", path, batch_size=5, on_progress=seen.append)
    assert [p.documents for p in seen] == [5, 10, 12]
    assert seen[-1].bytes_read == path.stat().st_size
    assert seen[0].bytes_read < seen[1].bytes_read < seen[-1].bytes_read
    ds.wait_for_task(accepted[-1]["task_id"], timeout=30)
    assert ds.get_document("books", "b011")["document"]["title"] == "book 11"


def test_delete_document_and_typed_errors(ds: Client) -> None:
    ds.create_collection("books", BOOK_FIELDS)
    ds.wait_for_task(ds.add_documents("books", books(2))[0]["task_id"], timeout=30)
    task = ds.wait_for_task(ds.delete_document("books", "b000")["task_id"], timeout=30)
    assert task["status"] == "succeeded"
    with pytest.raises(ApiError) as missing:
        ds.get_document("books", "b000")
    assert missing.value.status == 404 and "b000" in missing.value.message

    with pytest.raises(ApiError) as bad:
        ds.add_documents("books", [{"id": "x", "year": "not a number"}])
    assert (bad.value.status, bad.value.code) == (422, "invalid_input")
    assert bad.value.details[0]["field"] == "year"


def test_keys_scopes_and_revocation(ds: Client, live: LiveServer) -> None:
    ds.create_collection("books", BOOK_FIELDS)
    expires = datetime.now(UTC) + timedelta(days=30)
    created = ds.create_key("frontend", ["search"], ["books"], expires_at=expires)
    assert created["key"].startswith("dsk_")
    assert datetime.fromisoformat(created["expires_at"] or "") == expires
    assert created["id"] in [k["id"] for k in ds.list_keys()]
    with Client(live.url, created["key"]) as frontend:
        assert frontend.search("books")["total"] == 0
        with pytest.raises(ApiError) as forbidden:
            frontend.put_collection("other", BOOK_FIELDS)
        assert forbidden.value.status == 403
        ds.revoke_key(created["id"])
        with pytest.raises(ApiError) as revoked:
            frontend.search("books")
        assert revoked.value.status == 401


def test_wait_times_out_without_a_worker(
    settings: Settings, engine: Engine, backend: SearchBackend
) -> None:
    server = LiveServer(settings, engine, backend, worker=False).start()
    try:
        with Client(server.url, ADMIN_KEY) as ds:
            ds.create_collection("books", BOOK_FIELDS)
            task_id = ds.add_documents("books", books(1))[0]["task_id"]
            with pytest.raises(TaskTimeout, match="enqueued"):
                ds.wait_for_task(task_id, timeout=0.3)
    finally:
        server.stop()


def test_unreachable_server() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", ADMIN_KEY) as ds,
        pytest.raises(ServerUnreachable),
    ):
        ds.list_collections()


def test_partial_updates_filters_multi_search_and_facet_values(ds: Client) -> None:
    ds.create_collection("books", BOOK_FIELDS)
    ds.wait_for_task(ds.add_documents("books", books(6))[0]["task_id"], timeout=30)
    ds.wait_for_task(ds.update_document("books", "b000", {"title": "patched"})["task_id"])
    assert ds.get_document("books", "b000")["document"]["body"] == "lazy fox"
    task = ds.update_documents("books", [{"id": "b001", "tags": ["x"]}, {"id": "new"}])
    ds.wait_for_task(task["task_id"], timeout=30)
    assert ds.get_document("books", "b001")["document"]["tags"] == ["x"]
    assert ds.facet_values("books", "section", "s") == [
        {"value": "s0", "count": 2}, {"value": "s1", "count": 2}, {"value": "s2", "count": 2}
    ]  # fmt: skip
    deleted = ds.delete_by_filter("books", {"section": ["s2"]})
    assert deleted["received"] == 2
    ds.wait_for_task(deleted["task_id"], timeout=30)
    first, second = ds.multi_search(
        [
            {"collection": "books", "q": "patched"},
            {"collection": "books", "filter": {"nope": ["x"]}},
        ]
    )
    assert [h["id"] for h in first["hits"]] == ["b000"]
    assert second["status"] == 422
    with pytest.raises(ApiError) as missing:
        ds.update_document("books", "nope", {"title": "x"})
    assert missing.value.status == 404


def test_the_readme_example_runs(
    ds: Client, live: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("## Python client", 1)[1].split("```python\n", 1)[1].split("```")[0]
    assert len(example.strip().splitlines()) == 3
    ds.create_collection("books", BOOK_FIELDS)
    ds.wait_for_task(ds.add_documents("books", books(2))[0]["task_id"], timeout=30)
    (tmp_path / "var" / "docuseek").mkdir(parents=True)
    (tmp_path / "var" / "docuseek" / "admin.key").write_text(ADMIN_KEY + "\n")
    monkeypatch.chdir(tmp_path)
    exec(example.replace("http://127.0.0.1:8000", live.url), {})
    assert capsys.readouterr().out.strip() == "['b000', 'b001']"


def test_ids_with_slashes_and_percents_through_a_real_server(ds: Client, live: LiveServer) -> None:
    # uvicorn decodes %2F in the path it routes; the TestClient elsewhere does not.
    ids = ["guides/install.html", "50%/x?#y", "a%2Fb"]
    ds.create_collection("ids", {"title": {"type": "text"}})
    ds.wait_for_task(ds.add_documents("ids", [{"id": i, "title": "a"} for i in ids])[0]["task_id"])
    assert [ds.get_document("ids", i)["id"] for i in ids] == ids
    ds.wait_for_task(ds.update_document("ids", "guides/install.html", {"title": "b"})["task_id"])
    assert ds.get_document("ids", "guides/install.html")["document"]["title"] == "b"
    ds.wait_for_task(ds.delete_document("ids", "50%/x?#y")["task_id"])
    with pytest.raises(ApiError) as missing:
        ds.get_document("ids", "50%/x?#y")
    assert missing.value.status == 404 and "'50%/x?#y'" in missing.value.message
    assert [h["id"] for h in ds.search("ids", q="b")["hits"]] == ["guides/install.html"]
