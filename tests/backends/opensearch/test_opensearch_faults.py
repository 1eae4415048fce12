"""Faults of a real osmem-server process under the API and a worker: outage, reindex.

These always use an osmem-server of their own (they kill and freeze it), even when
OPENSEARCH_URL points the conformance suite at a real cluster.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opensearchpy import OpenSearch
from sqlalchemy import Engine, text

from docuseek import collections as collections_mod
from docuseek import reconcile as reconcile_mod
from docuseek.reindex import reindex
from docuseek.search.base import IndexOp, SearchBackend
from docuseek.search.opensearch import OpenSearchBackend
from docuseek.worker import Worker
from tests.helpers import (
    ADMIN_KEY,
    BOOK_FIELDS,
    DOCUSEEK_BIN,
    OsmemProcess,
    Racer,
    Service,
    wait_for,
)

REQUEST_TIMEOUT = 2.0  # seconds: a frozen engine answers 503 this fast


@pytest.fixture
def osmem() -> Iterator[OsmemProcess]:
    process = OsmemProcess()
    yield process
    process.close()


@pytest.fixture
def backend(osmem: OsmemProcess) -> SearchBackend:
    client = OpenSearch(
        hosts=[f"http://127.0.0.1:{osmem.port}"], timeout=REQUEST_TIMEOUT, max_retries=0
    )
    return OpenSearchBackend(client, "faults")


@pytest.fixture
def worker(service: Service) -> Iterator[Worker]:
    running = Worker(service.engine, service.backend, service.settings)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    yield running
    running.stop()
    thread.join(timeout=30)


def docs(start: int, n: int, title: str = "fault tolerant document") -> list[dict[str, Any]]:
    return [
        {"id": f"d{i:05d}", "title": f"{title} {i}", "body": "steady body", "year": 1900 + i % 100}
        for i in range(start, start + n)
    ]


def queue_length(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox")).scalar_one())


def wait_drained(engine: Engine, timeout: float = 90) -> None:
    wait_for(lambda: queue_length(engine) == 0, timeout, "the outbox to drain")


def assert_in_sync(service: Service, name: str) -> None:
    report = reconcile_mod.reconcile(service.engine, service.backend, name)
    assert report.drift.total == 0, report.drift
    assert report.indexed == report.documents
    assert service.search(name, q="steady", limit=1)["total"] == report.documents


def test_frozen_engine_during_ingest_loses_nothing(
    service: Service, osmem: OsmemProcess, worker: Worker
) -> None:
    """A hung engine (SIGSTOP) keeps its data: after it resumes the queue drains to no drift."""
    service.create_collection("docs", BOOK_FIELDS)
    tasks = [service.add("docs", docs(i * 500, 500)) for i in range(2)]
    wait_for(lambda: service.task(tasks[0])["status"] == "succeeded", 30, "the first batch")
    osmem.freeze()
    try:
        response = service.client.get("/collections/docs/search", params={"q": "steady"})
        assert response.status_code == 503
        assert "unavailable" in response.json()["error"]["message"]
        tasks += [service.add("docs", docs(i * 500, 500)) for i in range(2, 4)]
        # Updates queued behind older versions of the same documents: order must hold.
        tasks.append(service.add("docs", docs(0, 100, title="revised")))
        assert service.client.delete("/collections/docs/documents/d00150").status_code == 202
    finally:
        osmem.thaw()
    wait_drained(service.engine)
    assert all(service.task(t)["status"] == "succeeded" for t in tasks)
    assert_in_sync(service, "docs")
    assert service.search("docs", q="revised", limit=1)["total"] == 100


def test_killed_engine_during_ingest_recovers(
    service: Service, osmem: OsmemProcess, worker: Worker
) -> None:
    """Kill the engine mid-ingest of 3000 documents; writes are still accepted meanwhile.

    osmem-server keeps its indices in memory, so the restarted process is empty: the harsher
    case of a cluster that lost its data. The worker recreates the index and drains the
    queue; reconcile then finds exactly the lost documents missing (nothing stale, nothing
    extra), and `--repair` brings the index back to zero drift.
    """
    service.create_collection("docs", BOOK_FIELDS)
    tasks = [service.add("docs", docs(i * 500, 500)) for i in range(2)]
    wait_for(lambda: service.task(tasks[0])["status"] == "succeeded", 30, "the first batch")
    osmem.kill()
    response = service.client.get("/collections/docs/search", params={"q": "steady"})
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"]
    tasks += [service.add("docs", docs(i * 500, 500)) for i in range(2, 6)]
    tasks.append(service.add("docs", docs(1000, 50, title="revised")))
    osmem.restart()
    wait_drained(service.engine)
    assert all(service.task(t)["status"] == "succeeded" for t in tasks)

    report = reconcile_mod.reconcile(service.engine, service.backend, "docs", repair=True)
    assert len(report.drift.missing) >= 500  # at least the first batch died with the process
    assert report.drift.stale == [] and report.drift.extra == []
    assert report.queued == len(report.drift.missing)
    wait_drained(service.engine)
    assert_in_sync(service, "docs")
    assert service.search("docs", q="revised", limit=1)["total"] == 50


def test_reindex_under_concurrent_writes_loses_nothing(
    service: Service, worker: Worker, osmem: OsmemProcess
) -> None:
    service.create_collection("docs", BOOK_FIELDS)
    initial = 2000
    for i in range(0, initial, 500):
        service.add("docs", docs(i, 500))
    wait_drained(service.engine)

    stop = threading.Event()
    write_statuses: list[int] = []
    search_failures: list[str] = []
    totals: list[int] = []
    app = service.client.app
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def write() -> None:
        client = TestClient(app, headers=headers)
        n = 0
        while not stop.is_set() and n < 400:
            batch = docs(100_000 + n * 10, 10) + docs(n % initial, 1, title="rewritten")
            write_statuses.append(
                client.post("/collections/docs/documents", json=batch).status_code
            )
            if n % 5 == 4:  # delete one of our own earlier documents
                doc_id = f"d{100_000 + (n - 4) * 10:05d}"
                write_statuses.append(
                    client.delete(f"/collections/docs/documents/{doc_id}").status_code
                )
            n += 1

    def search() -> None:
        client = TestClient(app, headers=headers)
        while not stop.is_set():
            response = client.get("/collections/docs/search", params={"q": "steady"})
            if response.status_code != 200:
                search_failures.append(response.text)
            else:
                totals.append(response.json()["total"])

    threads = [threading.Thread(target=write), threading.Thread(target=search)]
    for t in threads:
        t.start()
    try:
        summary = reindex(service.engine, service.backend, "docs", batch_size=250)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert summary.generation == 2 and summary.documents >= initial
    assert write_statuses and set(write_statuses) == {202}
    assert search_failures == []
    # Never a half-built index: the original documents are always all there.
    assert totals and min(totals) >= initial
    wait_drained(service.engine)
    assert_in_sync(service, "docs")
    indices = service.backend.client.indices.get(index="faults-docs-*")  # type: ignore[attr-defined]
    assert list(indices) == ["faults-docs-2"]


def test_reconcile_command_reports_and_repairs_drift(service: Service, osmem: OsmemProcess) -> None:
    service.create_collection("docs", BOOK_FIELDS)
    service.add("docs", docs(0, 30))
    service.drain()
    backend: Any = service.backend
    # Drift, for real: a document the index has and PostgreSQL does not.
    ghost = {"id": "ghost", "title": "ghost"}
    backend.client.index(index="faults-docs-1", id="ghost", body=ghost, refresh=True)
    env = {
        **os.environ,
        "DATABASE_URL": service.settings.database_url or "",
        "SEARCH_BACKEND": "opensearch",
        "OPENSEARCH_URL": f"http://127.0.0.1:{osmem.port}",
        "OPENSEARCH_INDEX_PREFIX": "faults",
        "COLUMNS": "200",  # one report line, unwrapped
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [DOCUSEEK_BIN, "reconcile", "--collection", "docs", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    found = run()
    assert found.returncode == 1, found.stderr
    assert "1 extra" in found.stderr and "extra: ghost" in found.stderr
    repaired = run("--repair")
    assert repaired.returncode == 0 and "queued 1" in repaired.stderr, repaired.stderr
    service.drain()
    clean = run()
    assert clean.returncode == 0 and "drift 0" in clean.stderr, clean.stderr


# -- schema changes on OpenSearch --------------------------------------------------------


def test_schema_changes_wait_for_an_engine_that_is_down(
    service: Service, osmem: OsmemProcess
) -> None:
    """PostgreSQL and the engine change together or not at all: with the engine down a
    PUT or DELETE of a collection answers 503 and stores nothing (each was a 500 that
    had already committed)."""
    service.create_collection("docs", BOOK_FIELDS)
    osmem.kill()
    new = service.client.put("/collections/fresh", json={"fields": {"t": {"type": "text"}}})
    assert new.status_code == 503, new.text
    assert "nothing was changed" in new.json()["error"]["message"]
    more = {**BOOK_FIELDS, "isbn": {"type": "keyword"}}
    assert service.client.put("/collections/docs", json={"fields": more}).status_code == 503
    assert service.client.delete("/collections/docs").status_code == 503
    osmem.restart()
    assert service.client.get("/collections/fresh").status_code == 404
    assert "isbn" not in service.client.get("/collections/docs").json()["fields"]
    # Once the engine answers, the same requests go through.
    service.create_collection("docs", more)
    assert service.client.delete("/collections/docs").status_code == 204


def test_changing_a_field_type_is_refused_with_the_way_to_do_it(service: Service) -> None:
    """OpenSearch cannot change a mapping type in place: the PUT is refused (409, schema
    unchanged) instead of storing a schema the index cannot follow (searches on the field
    then answered 500), and the way it names works."""
    service.create_collection("docs", {"title": {"type": "text"}, "code": {"type": "keyword"}})
    service.add("docs", [{"id": "1", "title": "first", "code": "10"}])
    service.drain()
    retyped = {"title": {"type": "text"}, "code": {"type": "text"}}
    response = service.client.put("/collections/docs", json={"fields": retyped})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert "'code' is indexed as keyword" in error["message"]
    assert "docuseek reindex --collection docs" in error["message"]
    assert error["details"][0]["loc"] == ["body", "fields", "code"]
    assert service.client.get("/collections/docs").json()["fields"]["code"]["type"] == "keyword"

    # The way out: drop the field, rebuild the index, add it with its new type.
    service.create_collection("docs", {"title": {"type": "text"}})
    reindex(service.engine, service.backend, "docs")
    service.create_collection("docs", retyped)
    service.add("docs", [{"id": "2", "title": "second", "code": "spelled out in words"}])
    service.drain()
    assert [h["id"] for h in service.search("docs", q="words")["hits"]] == ["2"]


def test_a_recreated_collection_does_not_inherit_a_leftover_index(service: Service) -> None:
    """If dropping a deleted collection's index failed (the engine went away between the
    check and the drop), creating the name again must not bring its documents back."""
    service.create_collection("docs", BOOK_FIELDS)
    with service.engine.connect() as conn:
        old = collections_mod.load(conn, "docs")
    service.client.delete("/collections/docs")
    # What a failed drop leaves: the old index, with a document in it.
    service.backend.ensure_collection(old, 1)
    service.backend.index_batch(old, 1, [IndexOp("ghost", 1, {"id": "ghost", "title": "boo"})])
    service.create_collection("docs", BOOK_FIELDS)
    assert service.search("docs")["total"] == 0


def test_a_removed_field_keeps_no_hold_on_new_documents(service: Service) -> None:
    """A field dropped from the schema stays in the index mapping with its old type; a
    later document with another kind of value there failed to index
    (mapper_parsing_exception). Fields outside the schema are not parsed now, and
    documents come back whole."""
    fields: dict[str, Any] = {"title": {"type": "text"}, "flag": {"type": "boolean"}}
    service.create_collection("docs", fields)
    service.add("docs", [{"id": "1", "title": "first", "flag": True}])
    service.drain()
    service.create_collection("docs", {"title": {"type": "text"}})
    document = {"id": "2", "title": "second", "flag": "no longer a boolean", "n": {"x": [1]}}
    task_id = service.add("docs", [document])
    service.drain()
    assert service.task(task_id)["status"] == "succeeded", service.task(task_id)
    hits = {h["id"]: h["document"] for h in service.search("docs", q="second")["hits"]}
    assert hits == {"2": document}
    assert service.search("docs", q="first")["hits"][0]["document"]["flag"] is True


class CreateDuringDrop(OpenSearchBackend):
    """Starts a PUT that creates the collection again at the moment a DELETE drops its
    index (a race of the concurrent fuzz)."""

    def __init__(self, backend: OpenSearchBackend, service: Service) -> None:
        super().__init__(backend.client, backend.prefix)
        self.service = service
        self.racer: Racer | None = None

    def drop_collection(self, collection: Any, conn: Any = None) -> None:
        if self.racer is None:
            body = {"fields": {"title": {"type": "text"}}}
            self.racer = Racer(lambda: self.service.client.put("/collections/docs", json=body))
        super().drop_collection(collection, conn)


def test_a_collection_created_again_keeps_its_index(service: Service) -> None:
    """The DELETE dropped the old index after its commit, by name; a PUT creating the name
    again in between had made its index under the same names, and the drop took it: the
    new collection had no index (searches 503 until a write or a reindex)."""
    service.create_collection("docs", BOOK_FIELDS)
    assert isinstance(service.backend, OpenSearchBackend)
    racing = CreateDuringDrop(service.backend, service)
    collections_mod.delete(service.engine, racing, "docs")
    assert racing.racer is not None
    assert racing.racer.finish().status_code == 201
    # Before any write (the worker would make a missing index again on its first one).
    assert service.search("docs", q="anew")["total"] == 0
    service.add("docs", [{"id": "1", "title": "created anew"}])
    service.drain()
    assert [h["id"] for h in service.search("docs", q="anew")["hits"]] == ["1"]
    assert service.client.get("/collections/docs").json()["fields"] == {
        "title": {"type": "text", "facet": False}
    }
