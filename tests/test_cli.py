"""The command line as users run it: import, reindex, and `docuseek serve` (the README's run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from docuseek.importer import iter_json_array
from docuseek.reindex import reindex
from tests.helpers import BOOK_FIELDS, DOCUSEEK_BIN, Service, free_port, wait_for

DOCUSEEK = DOCUSEEK_BIN


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "SEARCH_BACKEND": "postgres"}
    return subprocess.run([DOCUSEEK, *args], env=env, capture_output=True, text=True, timeout=120)


def test_json_array_parser_handles_chunk_boundaries() -> None:
    import io

    import docuseek.importer as importer

    docs = [{"id": str(i), "n": 12345.678 + i, "s": "ü" * (i % 5)} for i in range(300)]
    original = importer.CHUNK_CHARS
    try:
        importer.CHUNK_CHARS = 7  # force every token across chunk boundaries
        assert list(iter_json_array(io.StringIO(json.dumps(docs)))) == docs
        assert list(iter_json_array(io.StringIO(" [ ] "))) == []
    finally:
        importer.CHUNK_CHARS = original


def test_reindex_keeps_searches_working_and_loses_no_write(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": f"d{i}", "title": f"stable {i}"} for i in range(3000)])
    service.drain()
    errors: list[Any] = []
    totals: list[int] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            response = service.client.get(
                "/collections/books/search", params={"q": "stable", "limit": 1, "facets": "section"}
            )
            if response.status_code != 200:
                errors.append(response.text)
            else:
                totals.append(response.json()["total"])

    written: list[str] = []

    def writer() -> None:
        from docuseek.worker import Worker

        worker = Worker(service.engine, service.backend, service.settings)
        for i in range(30):
            doc_id = f"new{i}"
            service.add("books", [{"id": doc_id, "title": f"stable fresh {i}"}])
            written.append(doc_id)
            worker.run(until_empty=True)

    threads = [threading.Thread(target=searcher), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    seen: list[tuple[int, int]] = []
    summary = reindex(
        service.engine, service.backend, "books", progress=lambda d, t: seen.append((d, t))
    )
    threads[1].join(timeout=120)
    stop.set()
    threads[0].join(timeout=30)
    service.drain()

    assert errors == []
    # Never a half-built index: every search saw at least the 3000 documents there before
    # (asking for facets makes the total exact).
    assert totals and min(totals) >= 3000
    assert (
        summary.generation == 2 and summary.documents >= 3000 and seen[-1][0] == summary.documents
    )
    assert service.search("books", q="fresh", limit=100)["total"] == len(written) == 30
    with service.engine.connect() as conn:
        tables = (
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'docuseek_index'")
            )
            .scalars()
            .all()
        )
    assert sorted(tables) == ["c1_g2", "c1_g2_vocab"]  # generation 1 went with its vocabulary
    assert service.client.get("/collections/books").json()["generation"] == 2


def test_reindex_command_and_all(service: Service, database_url: str) -> None:
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "one"}])
    service.drain()
    with service.engine.begin() as conn:  # simulate a lost index
        conn.execute(text("TRUNCATE docuseek_index.c1_g1"))
    assert service.search("books", q="one")["total"] == 0
    done = run_cli(database_url, "reindex", "--all", "--local")
    assert done.returncode == 0, done.stderr
    assert "books: generation 2 live, 1 documents" in done.stderr
    assert service.search("books", q="one")["total"] == 1
    assert run_cli(database_url, "reindex").returncode == 2
    missing = run_cli(database_url, "reindex", "--collection", "nope", "--local")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.mark.timeout(120)
def test_serve_runs_embedded_postgres_api_and_worker(tmp_path: Path) -> None:
    """`make run` from a fresh machine: no DATABASE_URL, a generated admin key, a search."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DOCUSEEK_ADMIN_KEY")}
    env.update(DOCUSEEK_DATA_DIR=str(tmp_path / "data"), DOCUSEEK_PORT=str(port))
    proc = subprocess.Popen(
        [DOCUSEEK, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"

    def call(method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        request = urllib.request.Request(
            base + path, method=method, data=None if body is None else json.dumps(body).encode()
        )
        request.add_header("content-type", "application/json")
        if key:
            request.add_header("authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def up() -> bool:
        try:
            return bool(call("GET", "/readyz")["status"] == "ready")
        except OSError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

    try:
        wait_for(up, 60, "docuseek serve")
        key_file = tmp_path / "data" / "admin.key"
        key = key_file.read_text().strip()
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        call("PUT", "/collections/notes", {"fields": {"text": {"type": "text"}}}, key)
        task = call(
            "POST",
            "/collections/notes/documents",
            [{"id": "n1", "text": "embedded mode works"}],
            key,
        )
        wait_for(
            lambda: call("GET", f"/tasks/{task['task_id']}", key=key)["status"] == "succeeded",
            30,
            "task",
        )
        hits = call("GET", "/collections/notes/search?q=embedded", key=key)["hits"]
        assert [h["id"] for h in hits] == ["n1"]
        # `docuseek import` with no flags finds this server and its key in the data dir.
        server_file = json.loads((tmp_path / "data" / "server.json").read_text())
        assert server_file["url"] == base
        notes = tmp_path / "notes.ndjson"
        notes.write_text('{"id": "n2", "text": "imported with no flags"}\n')
        no_db = {k: v for k, v in env.items() if k != "DOCUSEEK_API_KEY"}
        imported = subprocess.run(
            [DOCUSEEK, "import", str(notes), "--collection", "notes", "--wait"],
            env=no_db, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        assert call("GET", "/collections/notes/search?q=flags", key=key)["total"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    assert "Admin API key (shown once" in output and key in output
    assert not (tmp_path / "data" / "server.json").exists()
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), output
    # A second start reuses the data directory and does not print the key again.
    proc = subprocess.Popen(
        [DOCUSEEK, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(up, 60, "docuseek serve (restart)")
        assert call("GET", "/collections/notes/search?q=embedded", key=key)["total"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)  # what docker stop, systemd and kill send
        output = proc.communicate(timeout=60)[0]
    assert key not in output
    # Either way the embedded PostgreSQL is shut down with it, not left running, and
    # quietly: its going away is no reason for the outbox listener to warn.
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), output
    assert "worker stopped" in output and "reconnecting" not in output, output
