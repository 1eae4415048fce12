"""Document files over HTTP: upload, durable originals, extraction in the worker's
sandboxed child, hostile files failing alone, page-aware hits. Real files (files_corpus)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from docuseek.api.app import create_app
from docuseek.files import process as files_process
from docuseek.files import storage as files_storage
from docuseek.files.extract import EXTRACTOR_VERSION
from docuseek.files.importer import import_files, wait_for_tasks
from docuseek.files.process import requeue_stale
from docuseek.search.base import SearchBackend
from docuseek.settings import Settings
from tests import files_corpus as C
from tests.helpers import ADMIN_KEY, DOCUSEEK_BIN, Service

FILE_FIELDS: dict[str, Any] = {
    "title": {"type": "text", "weight": "A"},
    "content": {"type": "text"},
    "author": {"type": "keyword", "facet": True},
    "created": {"type": "date"},
    "language": {"type": "keyword"},
    "pages": {"type": "integer"},
    "content_type": {"type": "keyword", "facet": True},
    "size": {"type": "integer"},
    "filename": {"type": "keyword"},
    "team": {"type": "keyword", "facet": True},
}
PDF_MIME = "application/pdf"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def upload(service: Service, name: str, files: list[tuple[str, bytes]], fields: Any = None) -> Any:
    parts: list[tuple[str, Any]] = [("file", (fname, data)) for fname, data in files]
    data = {"fields": json.dumps(fields)} if fields is not None else None
    return service.client.post(f"/collections/{name}/files", files=parts, data=data)


def accepted(
    service: Service, name: str, files: list[tuple[str, bytes]], fields: Any = None
) -> int:
    response = upload(service, name, files, fields)
    assert response.status_code == 202, response.text
    return int(response.json()["task_id"])


def stored_counts(engine: Engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("files", "file_chunks", "documents", "tasks")
        )


def test_files_are_extracted_searchable_and_downloadable(service: Service) -> None:
    service.create_collection("docs", FILE_FIELDS)
    two_pages = C.pdf(
        ["Quarterly report\nRevenue grew in the north.", "Appendix\nThe zeppelin budget doubled."],
        title="Quarterly report",
        author="Ada Lovelace",
    )
    files = [
        ("report.pdf", two_pages),
        ("memo.docx", C.docx(["The heliotrope memo is final."], title="Memo", author="Bob")),
        ("deploy.md", C.markdown_doc()),
        ("notes-latin1.txt", C.latin1_text()),
        ("guide.html", C.html_doc()),
        ("lies.txt", C.pdf(["A PDF named like a text file mentions quokka."])),
    ]
    fields = [
        {"id": "report", "team": "finance"},
        {"id": "memo"},
        {"id": "deploy"},
        {"id": "latin"},
        {"id": "guide"},
        {"id": "lies"},
    ]
    task_id = accepted(service, "docs", files, fields)
    service.drain()
    task = service.task(task_id)
    assert task["status"] == "succeeded", task
    assert task["details"]["indexed"] == 6

    doc = service.client.get("/collections/docs/documents/report").json()["document"]
    assert doc["title"] == "Quarterly report" and doc["author"] == "Ada Lovelace"
    assert doc["pages"] == 2 and doc["content_type"] == PDF_MIME and doc["team"] == "finance"
    assert doc["filename"] == "report.pdf" and doc["size"] == len(two_pages)
    assert (
        service.client.get("/collections/docs/documents/memo").json()["document"]["content_type"]
        == DOCX_MIME
    )
    latin = service.client.get("/collections/docs/documents/latin").json()["document"]
    assert "crème brûlée" in latin["content"] and "façade" in latin["content"]
    lies = service.client.get("/collections/docs/documents/lies").json()["document"]
    assert lies["content_type"] == PDF_MIME  # from the bytes, not the name

    hits = service.search("docs", q="zeppelin")["hits"]
    assert [h["id"] for h in hits] == ["report"]
    assert hits[0]["pages"] == [2]
    assert "<mark>zeppelin</mark>" in hits[0]["highlights"]["content"][0]
    assert [h["id"] for h in service.search("docs", q="heliotrope")["hits"]] == ["memo"]
    assert [h["id"] for h in service.search("docs", q="quokka")["hits"]] == ["lies"]
    assert "pages" not in service.search("docs", q="heliotrope")["hits"][0]

    for doc_id, (fname, data) in zip(
        ["report", "memo", "latin", "lies"], [files[0], files[1], files[3], files[5]], strict=True
    ):
        response = service.client.get(f"/collections/docs/documents/{doc_id}/file")
        assert response.status_code == 200
        assert response.content == data  # byte-identical
        assert fname in response.headers["content-disposition"]
    assert (
        service.client.get("/collections/docs/documents/report/file").headers["content-type"]
        == PDF_MIME
    )


def test_hostile_files_fail_alone_with_reasons(service: Service) -> None:
    service.create_collection("docs", FILE_FIELDS)
    hostile = {
        "encrypted": C.encrypted_pdf(),
        "truncated": C.truncated_pdf(),
        "bomb": C.zip_bomb_docx(),
    }
    files = [(f"{k}.bin", v) for k, v in hostile.items()]
    files.append(("fine.pdf", C.pdf(["Nothing hostile about the walrus."])))
    task_id = accepted(service, "docs", files, [{"id": k} for k in hostile] + [{"id": "fine"}])
    service.drain()
    task = service.task(task_id)
    assert task["status"] == "failed"
    assert task["details"]["indexed"] == 1 and task["details"]["failed"] == 3
    listed = service.client.get("/collections/docs/files/failed").json()
    reasons = {f["id"]: f["error"] for f in listed}
    assert list(reasons) == ["bomb", "encrypted", "truncated"]  # by id; "fine" is not listed
    assert reasons["encrypted"] == "encrypted PDF: supply a password-free copy"
    assert "truncated PDF" in reasons["truncated"]
    assert "zip bomb" in reasons["bomb"]
    assert {f["filename"] for f in listed} == {"bomb.bin", "encrypted.bin", "truncated.bin"}
    page = service.client.get("/collections/docs/files/failed?after=bomb&limit=1").json()
    assert [f["id"] for f in page] == ["encrypted"]
    assert [h["id"] for h in service.search("docs", q="walrus")["hits"]] == ["fine"]
    for doc_id, data in hostile.items():  # the originals stay stored
        response = service.client.get(f"/collections/docs/documents/{doc_id}/file")
        assert response.status_code == 200 and response.content == data


def test_identical_bytes_are_stored_once(service: Service) -> None:
    service.create_collection("a", FILE_FIELDS)
    service.create_collection("b", FILE_FIELDS)
    data = C.long_pdf(3)
    accepted(service, "a", [("one.pdf", data), ("two.pdf", data)], [{"id": "1"}, {"id": "2"}])
    accepted(service, "b", [("three.pdf", data)], [{"id": "3"}])
    files, chunks, documents, _ = stored_counts(service.engine)
    assert (files, chunks, documents) == (1, 1, 3)
    with service.engine.connect() as conn:
        sha = conn.execute(text("SELECT encode(sha256, 'hex') FROM files")).scalar_one()
    assert sha == hashlib.sha256(data).hexdigest()
    # Without an id, a file's id is its SHA-256; the same upload again changes nothing.
    assert upload(service, "b", [("again.pdf", data)]).json()["status"] == "enqueued"
    service.drain()
    assert upload(service, "b", [("again.pdf", data)]).json()["status"] == "succeeded"
    assert service.client.get(f"/collections/b/documents/{sha}/file").content == data


@pytest.fixture
def small_service(engine: Engine, backend: SearchBackend, settings: Settings) -> Iterator[Service]:
    limited = settings.model_copy(update={"max_file_bytes": 100_000})
    app = create_app(limited, engine, backend)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        yield Service(client, engine, backend, limited)


def test_a_file_over_the_limit_gets_413_and_nothing_is_stored(small_service: Service) -> None:
    small_service.create_collection("docs", FILE_FIELDS)
    before = stored_counts(small_service.engine)
    big = C.long_pdf(200)
    assert len(big) > 100_000
    response = upload(small_service, "docs", [("small.pdf", C.long_pdf(1)), ("big.pdf", big)])
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large" and "'big.pdf'" in error["message"]
    assert stored_counts(small_service.engine) == before


def test_bad_uploads_are_refused_and_store_nothing(service: Service) -> None:
    service.create_collection("plain", {"title": {"type": "text"}})
    service.create_collection("docs", FILE_FIELDS)
    service.create_collection("odd", {**FILE_FIELDS, "pages": {"type": "keyword"}})
    pdf = C.long_pdf(1)
    before = stored_counts(service.engine)
    cases = [
        (upload(service, "plain", [("a.pdf", pdf)]), 422, "'content'"),
        (upload(service, "odd", [("a.pdf", pdf)]), 422, "'pages'"),
        (upload(service, "docs", [("a.pdf", pdf)], [{"content": "mine"}]), 422, "'content'"),
        (upload(service, "docs", [("a.pdf", pdf)], [{"id": 5}]), 422, "'id'"),
        (upload(service, "docs", [("a.pdf", pdf)], [{}, {}]), 422, "2 objects for 1 files"),
        (upload(service, "docs", [("a.pdf", pdf)], [{"team": 7}]), 422, "'team'"),
        (service.client.post("/collections/docs/files", json=[{"id": "x"}]), 422, "multipart"),
        (upload(service, "missing", [("a.pdf", pdf)]), 404, "missing"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, response.text
        assert words in response.json()["error"]["message"], response.text
    assert stored_counts(service.engine) == before
    missing = service.client.get("/collections/docs/documents/nope/file")
    assert missing.status_code == 404


def test_reindex_extracts_again_what_another_extractor_version_extracted(
    service: Service,
) -> None:
    service.create_collection("docs", FILE_FIELDS)
    accepted(service, "docs", [("a.pdf", C.pdf(["The pangolin report."]))], [{"id": "a"}])
    accepted(service, "docs", [("b.md", C.markdown_doc())], [{"id": "b"}])
    service.drain()
    assert requeue_stale(service.engine, "docs") == 0  # all current
    with service.engine.begin() as conn:
        # What an older extractor left: its version, and text this one would not produce.
        conn.execute(text("UPDATE document_files SET extractor = '0' WHERE doc_id = 'a'"))
        conn.execute(
            text(
                "UPDATE documents SET body = jsonb_set(body, '{content}', '\"old text\"')"
                " WHERE id = 'a'"
            )
        )
    before = service.client.get("/collections/docs/documents/a").json()["version"]
    assert requeue_stale(service.engine, "docs") == 1
    service.drain()
    after = service.client.get("/collections/docs/documents/a").json()
    assert after["version"] > before
    assert after["document"]["content"] == "The pangolin report."
    assert [h["id"] for h in service.search("docs", q="pangolin")["hits"]] == ["a"]
    with service.engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT extractor FROM document_files")).all() == [
            (EXTRACTOR_VERSION,)
        ]
    assert requeue_stale(service.engine, "docs") == 0


def test_a_json_write_replaces_a_file_document(service: Service) -> None:
    service.create_collection("docs", FILE_FIELDS)
    accepted(service, "docs", [("a.pdf", C.pdf(["The pangolin report."]))], [{"id": "a"}])
    service.drain()
    service.add("docs", [{"id": "a", "content": "typed by hand about a lemur"}])
    service.drain()
    assert service.client.get("/collections/docs/documents/a").json()["document"] == {
        "id": "a",
        "content": "typed by hand about a lemur",
    }
    assert [h["id"] for h in service.search("docs", q="lemur")["hits"]] == ["a"]
    assert service.search("docs", q="pangolin")["hits"] == []
    response = service.client.get("/collections/docs/documents/a/file")
    assert response.status_code == 404
    assert "replaced by a JSON write" in response.json()["error"]["message"]


def test_import_files_uploads_a_folder_recursively(service: Service, tmp_path: Path) -> None:
    service.create_collection("docs", FILE_FIELDS)
    (tmp_path / "reports" / "2026").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "reports" / "2026" / "q1.pdf").write_bytes(C.pdf(["Page one.", "The ibex."]))
    (tmp_path / "memo.docx").write_bytes(C.docx(["A memo on the tapir."], title="M", author="A"))
    (tmp_path / "notes.txt").write_bytes(C.latin1_text())
    (tmp_path / "bomb.docx").write_bytes(C.zip_bomb_docx())
    (tmp_path / ".git" / "config").write_text("hidden: not imported")
    progress: list[tuple[int, int]] = []
    summary = import_files(service.client, "docs", tmp_path, on_file=lambda *p: progress.append(p))
    assert summary.files == 4 and summary.refused == {} and len(summary.task_ids) == 1
    assert progress[-1] == (4, 4)
    service.drain()
    tasks = wait_for_tasks(service.client, summary.task_ids, poll=0.05)
    (task,) = tasks.values()
    assert task["details"]["indexed"] == 3 and task["details"]["failed"] == 1
    assert "bomb.docx" in task["error"] and "zip bomb" in task["error"]
    hits = service.search("docs", q="ibex")["hits"]
    assert [(h["id"], h["pages"]) for h in hits] == [("reports/2026/q1.pdf", [2])]
    assert [h["id"] for h in service.search("docs", q="tapir")["hits"]] == ["memo.docx"]
    # Ids under a folder hold `/`: sent as %2F, they name the document and its file.
    pdf = service.client.get("/collections/docs/documents/reports%2F2026%2Fq1.pdf/file")
    assert pdf.status_code == 200, pdf.text
    assert pdf.content == (tmp_path / "reports" / "2026" / "q1.pdf").read_bytes()
    stored = service.client.get("/collections/docs/documents/reports%2F2026%2Fq1.pdf")
    assert stored.status_code == 200 and stored.json()["id"] == "reports/2026/q1.pdf"
    hidden = service.client.get("/collections/docs/documents/.git%2Fconfig")
    assert hidden.status_code == 404 and "'.git/config'" in hidden.json()["error"]["message"]
    # Again: nothing changed, nothing queued.
    again = import_files(service.client, "docs", tmp_path)
    assert [service.task(t)["status"] for t in again.task_ids] == ["succeeded"]


def test_import_files_reports_a_file_over_the_limit_and_sends_the_rest(
    small_service: Service, tmp_path: Path
) -> None:
    small_service.create_collection("docs", FILE_FIELDS)
    (tmp_path / "big.pdf").write_bytes(C.long_pdf(200))
    (tmp_path / "small.pdf").write_bytes(C.pdf(["A small file about a quoll."]))
    summary = import_files(small_service.client, "docs", tmp_path)
    assert summary.files == 1
    assert list(summary.refused) == ["big.pdf"]
    assert "DOCUSEEK_MAX_FILE_BYTES" in summary.refused["big.pdf"]
    small_service.drain()
    assert [h["id"] for h in small_service.search("docs", q="quoll")["hits"]] == ["small.pdf"]


def test_fuzzed_uploads_and_downloads_get_no_server_error(service: Service) -> None:
    # The API fuzz test's collection has no `content` field, so its uploads stop at the
    # schema check: here the file routes are fuzzed against a collection that takes files.
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    service.create_collection("docs", FILE_FIELDS)
    accepted(service, "docs", [("a.pdf", C.pdf(["fuzz target"]))], [{"id": "a"}])
    schema = schemathesis.openapi.from_asgi("/openapi.json", service.client.app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.endswith(("/files", "/file"))
    ]
    assert len(operations) == 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=80,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            case.path_parameters["name"] = "docs"
            if "doc_id" in case.path_parameters and case.path_parameters["doc_id"][:1] == "":
                case.path_parameters["doc_id"] = "a"
            case.call_and_validate(
                headers={"Authorization": f"Bearer {ADMIN_KEY}"}, checks=[not_a_server_error]
            )

        no_server_error()
    service.drain()  # whatever was accepted extracts without a worker error
    with service.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0


def test_a_batch_retried_after_extraction_counts_the_failed_file_again(service: Service) -> None:
    # The state a batch leaves when its files were extracted (each committed on its own)
    # and its indexing then failed: the retry must not extract again, and must still count
    # the file that failed.
    service.create_collection("docs", FILE_FIELDS)
    task_id = accepted(
        service,
        "docs",
        [("locked.pdf", C.encrypted_pdf()), ("open.pdf", C.pdf(["A dugong."]))],
        [{"id": "locked"}, {"id": "open"}],
    )
    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'docs'")).scalar_one()
    keys = [(cid, "locked"), (cid, "open")]
    first = files_process.extract_pending(service.engine, keys, service.settings)
    assert first == {(cid, "locked"): "encrypted PDF: supply a password-free copy"}
    with service.engine.begin() as conn:  # an extraction now would show in the body again
        conn.execute(
            text("UPDATE documents SET body = body || CAST(:extra AS jsonb) WHERE id = 'open'"),
            {"extra": json.dumps({"content": "kept"})},
        )
    assert files_process.extract_pending(service.engine, keys, service.settings) == first
    service.drain()
    task = service.task(task_id)
    assert (task["status"], task["details"]["indexed"], task["details"]["failed"]) == (
        "failed",
        1,
        1,
    )
    assert "encrypted PDF" in task["error"]
    assert (
        service.client.get("/collections/docs/documents/open").json()["document"]["content"]
        == "kept"
    )


def stored_originals(engine: Engine) -> dict[str, int]:
    """SHA-256 (hex) of each stored original -> how many chunks it has."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT encode(f.sha256, 'hex'), count(c.seq) FROM files f"
                " LEFT JOIN file_chunks c ON c.sha256 = f.sha256 GROUP BY f.sha256"
            )
        ).all()
    return {sha: int(chunks) for sha, chunks in rows}


def test_garbage_collection_deletes_unused_originals_and_keeps_shared_ones(
    service: Service, engine: Engine, database_url: str
) -> None:
    service.create_collection("docs", FILE_FIELDS)
    deleted = C.pdf(["The deleted document's original."])
    replaced = C.pdf(["The first version of a report."])
    newer = C.pdf(["The second version of a report."])
    by_json = C.docx(["A memo later replaced by a JSON write."], title="Memo", author="Eve")
    shared = C.pdf(["Two documents share these bytes."])
    sha = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in [
            ("deleted", deleted),
            ("replaced", replaced),
            ("newer", newer),
            ("by_json", by_json),
            ("shared", shared),
        ]
    }
    files = [
        ("deleted.pdf", deleted),
        ("report.pdf", replaced),
        ("memo.docx", by_json),
        ("a.pdf", shared),
        ("b.pdf", shared),
    ]
    ids = ["deleted", "report", "memo", "shared-a", "shared-b"]
    accepted(service, "docs", files, [{"id": i} for i in ids])
    service.drain()
    assert set(stored_originals(engine)) == {
        sha["deleted"],
        sha["replaced"],
        sha["by_json"],
        sha["shared"],
    }

    assert service.client.delete("/collections/docs/documents/deleted").status_code == 202
    assert service.client.delete("/collections/docs/documents/shared-a").status_code == 202
    accepted(service, "docs", [("report.pdf", newer)], [{"id": "report"}])
    written = service.client.post(
        "/collections/docs/documents", json=[{"id": "memo", "content": "now plain JSON"}]
    )
    assert written.status_code == 202, written.text
    service.drain()

    # Within the grace period nothing is deleted; the replaced memo's link goes already.
    kept = files_storage.collect_garbage(engine, older_than_seconds=3600)
    assert (kept.stale_links, kept.files, kept.bytes) == (1, 0, 0)
    assert len(stored_originals(engine)) == 5

    # The originals of the deleted, the replaced and the JSON-replaced documents go, with
    # their chunks; the one a remaining document shares stays, as does the newer report.
    result = subprocess.run(
        [DOCUSEEK_BIN, "files", "gc", "--older-than", "0"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    size = len(deleted) + len(replaced) + len(by_json)
    assert f"deleted 3 original(s), {size / 1e6:.1f} MB" in result.stderr, result.stderr
    assert stored_originals(engine) == {sha["shared"]: 1, sha["newer"]: 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM file_chunks")).scalar_one() == 2
    assert service.client.get("/collections/docs/documents/shared-b/file").content == shared
    assert service.client.get("/collections/docs/documents/report/file").content == newer
    assert service.client.get("/collections/docs/documents/memo/file").status_code == 404
    assert [h["id"] for h in service.search("docs", q="share")["hits"]] == ["shared-b"]

    # The same bytes uploaded again after their original went are stored anew; bytes
    # uploaded again while still stored renew their age, so the collector keeps them.
    accepted(service, "docs", [("deleted.pdf", deleted)], [{"id": "again"}])
    with engine.begin() as conn:
        conn.execute(text("UPDATE files SET created_at = now() - interval '2 hours'"))
    accepted(service, "docs", [("b.pdf", shared)], [{"id": "shared-c"}])
    with engine.connect() as conn:
        ages = dict(
            conn.execute(
                text(
                    "SELECT encode(sha256, 'hex'), now() - created_at < interval '1 minute'"
                    " FROM files"
                )
            ).all()
        )
    assert ages == {sha["deleted"]: False, sha["shared"]: True, sha["newer"]: False}
    assert service.client.get("/collections/docs/documents/again/file").content == deleted
