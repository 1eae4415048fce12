"""`docuseek import` and `docuseek reindex` as users run them: a subprocess talking HTTP to a
real server (uvicorn on a free port, a real worker pool), never to the database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from docuseek.api.routes import reindex as reindex_route
from docuseek.reindex import _lock_key
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests.helpers import ADMIN_KEY, BOOK_FIELDS, DOCUSEEK_BIN, Service, wait_for
from tests.live_server import LiveServer


@pytest.fixture
def live(settings: Settings, engine: Engine, backend: SearchBackend) -> Iterator[LiveServer]:
    server = LiveServer(settings, engine, backend).start()
    yield server
    server.stop()


def cli(*args: str, key: str | None = ADMIN_KEY) -> subprocess.Popen[str]:
    # No DATABASE_URL: the commands must go through the API.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DOCUSEEK_API_KEY")}
    if key is not None:
        env["DOCUSEEK_API_KEY"] = key
    return subprocess.Popen(
        [DOCUSEEK_BIN, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, key: str | None = ADMIN_KEY) -> tuple[int, str]:
    proc = cli(*args, key=key)
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM documents")).scalar_one())


def test_import_json_array_and_ndjson_over_http(
    service: Service, live: LiveServer, tmp_path: Path
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    docs = [{"id": f"d{i}", "title": f"imported title {i}", "year": 1000 + i} for i in range(2500)]
    array_file = tmp_path / "docs.json"
    array_file.write_text(json.dumps(docs, indent=1))
    code, err = run(
        "import", str(array_file), "--collection", "books", "--batch-size", "1000", "--wait",
        "--url", live.url,
    )  # fmt: skip
    assert code == 0, err
    assert "imported 2500 documents in 3 batches" in err
    assert re.search(r"docs/s, [\d.]+ MB/s", err), err
    assert service.client.get("/collections/books").json()["documents"] == 2500
    # --wait returned only once every task had finished: all of them are searchable now.
    assert service.search("books", filter="year>=3000", limit=1)["total"] == 500

    ndjson = tmp_path / "more.ndjson"
    ndjson.write_text("\n".join(json.dumps({**d, "title": "changed"}) for d in docs[:10]) + "\n")
    code, err = run("import", str(ndjson), "--collection", "books", "--wait", "--url", live.url)
    assert code == 0, err
    assert service.search("books", q="changed")["total"] == 10
    # --gzip: the same batches compressed, both file forms.
    ndjson.write_text("\n".join(json.dumps({**d, "title": "zipped"}) for d in docs[:20]) + "\n")
    array_file.write_text(json.dumps([{**d, "title": "zipped"} for d in docs[20:50]]))
    for source in (ndjson, array_file):
        code, err = run("import", str(source), "--collection", "books", "--wait", "--gzip",
                        "--url", live.url)  # fmt: skip
        assert code == 0, err
    assert service.search("books", q="zipped", limit=1)["total"] == 50

    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"id": "x1"}\n{"id": "x2", "year": "soon"}\n')
    code, err = run("import", str(bad), "--collection", "books", "--url", live.url)
    assert code == 1 and "document #1 of the file (line 2)" in err and "year" in err, err
    assert "0 documents were acknowledged" in err

    # Errors point at lines of the file, not of the batch that carried them.
    broken = tmp_path / "broken.ndjson"
    broken.write_text('{"id": "y1"}\n\n{"id": "y2"}\n{"id": "y3", "year": "x"}\n')
    code, err = run("import", str(broken), "--collection", "books", "--url", live.url,
                    "--batch-size", "2")  # fmt: skip
    assert code == 1 and "document #2 of the file (line 4)" in err, err
    assert "2 documents were acknowledged" in err
    broken.write_text('{"id": "y1"}\n\n{"id": "y2"}\n{"id": "y3"}\n\n{"id": \n')
    code, err = run("import", str(broken), "--collection", "books", "--url", live.url,
                    "--batch-size", "2")  # fmt: skip
    assert code == 1 and "line 6 of the file" in err, err
    assert "HTTP Request" not in err  # one line per batch would bury the progress bar

    # Not UTF-8, at its start or deep inside an array: a message, not a traceback.
    for name, content in (
        ("latin.json", b"\xff\xfe[{}]"),
        ("late.json", b'[{"id": "z1", "title": "' + b"x" * 5000 + b'\xe9"}]'),
    ):
        (tmp_path / name).write_bytes(content)
        code, err = run("import", str(tmp_path / name), "--collection", "books", "--url", live.url)
        assert code == 1 and f"{name} is not UTF-8 text" in err, err
        assert "Traceback" not in err


def test_import_with_a_wrong_key_stores_nothing(
    service: Service, live: LiveServer, tmp_path: Path
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    path = tmp_path / "docs.ndjson"
    path.write_text('{"id": "1", "title": "x"}\n')
    code, err = run(
        "import", str(path), "--collection", "books", "--url", live.url, key="dsk_wrong"
    )
    assert code == 1
    assert "401 unauthorized: invalid API key" in err, err
    assert stored(service.engine) == 0


def test_import_reports_how_far_it_got_when_the_server_goes_away(
    service: Service, live: LiveServer, tmp_path: Path
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    path = tmp_path / "many.ndjson"
    with path.open("w") as handle:
        for i in range(200_000):
            handle.write(json.dumps({"id": f"d{i}", "title": f"title {i}"}) + "\n")
    proc = cli("import", str(path), "--collection", "books", "--batch-size", "200",
               "--url", live.url)  # fmt: skip
    wait_for(lambda: stored(service.engine) >= 1000, 60, "some batches to be stored")
    live.stop()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    # Refused (the server is gone) or cut off (it closed the connection the next batch
    # was sent on as it stopped): either way the error is named.
    assert "import stopped:" in err, err
    assert "ConnectError" in err or "RemoteProtocolError: Server disconnected" in err, err
    found = re.search(r"(\d+) documents were acknowledged by the server", err)
    assert found, err
    acknowledged = int(found.group(1))
    # What it reports is exactly what the server stored: every batch it counted was
    # committed, and no batch it did not count was.
    assert 1000 <= acknowledged == stored(service.engine) < 200_000


def test_reindex_through_the_api_reports_progress_in_its_task(
    service: Service, live: LiveServer
) -> None:
    service.create_collection("books", BOOK_FIELDS)
    task = service.add("books", [{"id": str(i), "title": f"t{i}"} for i in range(1500)])
    wait_for(lambda: service.task(task)["status"] == "succeeded", 30, "indexing")
    with service.engine.begin() as conn:  # a lost index
        conn.execute(text("TRUNCATE docuseek_index.c1_g1"))
    assert service.search("books", q="t7", prefix="false")["total"] == 0

    code, err = run("reindex", "--collection", "books", "--url", live.url)
    assert code == 0, err
    found = re.search(r"books: reindexed, 1500 documents in [\d.]+ s \(task (\d+)\)", err)
    assert found, err
    reindex_task = service.task(int(found.group(1)))
    assert reindex_task["type"] == "reindex" and reindex_task["status"] == "succeeded"
    assert reindex_task["details"]["received"] == reindex_task["details"]["indexed"] == 1500
    assert service.client.get("/collections/books").json()["generation"] == 2
    assert service.search("books", q="t7", prefix="false")["total"] == 1

    missing = service.client.post("/collections/nope/reindex")
    assert missing.status_code == 404
    with_search_key = service.client.post("/keys", json={"name": "s", "scopes": ["search"]}).json()[
        "key"
    ]
    code, err = run("reindex", "--collection", "books", "--url", live.url, key=with_search_key)
    assert code == 1 and "lacks the 'admin' scope" in err, err


def test_a_second_reindex_request_before_the_first_starts_is_refused(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for a thread that the scheduler starts late: the fault is timing.
    real_reindex = reindex_route.reindex

    def late_reindex(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1)
        return real_reindex(*args, **kwargs)

    monkeypatch.setattr(reindex_route, "reindex", late_reindex)
    service.create_collection("books", BOOK_FIELDS)
    first = service.client.post("/collections/books/reindex")
    assert first.status_code == 202, first.text
    second = service.client.post("/collections/books/reindex")
    assert second.status_code == 409 and "already running" in second.text
    task_id = first.json()["task_id"]
    wait_for(lambda: service.task(task_id)["status"] == "succeeded", 30, "the reindex")
    # Released when the run ends: the next one starts.
    again = service.client.post("/collections/books/reindex")
    assert again.status_code == 202, again.text
    wait_for(lambda: service.task(again.json()["task_id"])["status"] == "succeeded", 30, "again")


def test_reindex_refuses_a_second_run_and_fails_interrupted_tasks(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    with service.engine.connect() as holder:  # a reindex in progress holds this lock
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(1)})
        busy = service.client.post("/collections/books/reindex")
        assert busy.status_code == 409 and "already running" in busy.text
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(1)})
        holder.commit()
    with service.engine.begin() as conn:  # what an api process killed mid-reindex leaves
        stale = conn.execute(
            text(
                "INSERT INTO tasks (type, collection, status) VALUES"
                " ('reindex', 'books', 'processing') RETURNING id"
            )
        ).scalar_one()
    started = service.client.post("/collections/books/reindex")
    assert started.status_code == 202, started.text
    assert service.task(stale)["status"] == "failed"
    assert "interrupted" in service.task(stale)["error"]
    wait_for(
        lambda: service.task(started.json()["task_id"])["status"] == "succeeded", 30, "reindex"
    )
