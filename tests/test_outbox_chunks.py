"""The outbox queues a write in chunks of documents; a worker claims whole chunks up to its
batch size (migration 0006)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from docuseek.queries import OUTBOX_CHUNK
from docuseek.worker import Worker
from tests.helpers import BOOK_FIELDS, Service


def docs(start: int, n: int, word: str = "alpha") -> list[dict[str, Any]]:
    return [{"id": f"d{i:04d}", "title": f"{word} {i}"} for i in range(start, start + n)]


def chunk_sizes(service: Service) -> list[int]:
    with service.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT cardinality(doc_ids) FROM outbox ORDER BY cardinality(doc_ids) DESC")
            ).scalars()
        )


def worker(service: Service, batch: int) -> Worker:
    return Worker(
        service.engine,
        service.backend,
        service.settings.model_copy(update={"worker_batch_size": batch}),
    )


def test_a_write_is_queued_in_chunks_and_a_batch_takes_whole_chunks(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    task_id = service.add("books", docs(0, 2 * OUTBOX_CHUNK + 50))
    assert chunk_sizes(service) == [OUTBOX_CHUNK, OUTBOX_CHUNK, 50]

    # Room for 2.5 chunks: two whole chunks are taken, the third waits.
    outcome = worker(service, 2 * OUTBOX_CHUNK + 50).run_batch()
    assert outcome.claimed == 2
    assert chunk_sizes(service) == [50]
    task = service.task(task_id)
    assert (task["status"], task["details"]["indexed"]) == ("processing", 2 * OUTBOX_CHUNK)
    assert service.search("books", q="alpha")["total"] == 2 * OUTBOX_CHUNK

    worker(service, 10).run_batch()  # a chunk larger than the batch is still taken whole
    assert chunk_sizes(service) == []
    assert service.task(task_id)["status"] == "succeeded"
    assert service.search("books", q="alpha")["total"] == 2 * OUTBOX_CHUNK + 50


def test_single_document_chunks_fill_a_batch(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    for i in range(30):
        service.add("books", docs(i, 1))
    assert chunk_sizes(service) == [1] * 30
    # The first fetch takes one row (batch // OUTBOX_CHUNK, at least one), the next the 24
    # that fit once the rows are known to be single documents.
    assert worker(service, 25).run_batch().claimed == 25
    assert len(chunk_sizes(service)) == 5
    assert worker(service, 25).run_batch().claimed == 5


def test_a_resent_unchanged_document_waits_for_its_queued_change(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    first = service.add("books", docs(0, 150))
    # The same content again, plus one new document, before the worker ran: only the new
    # one changed, but the task must also wait for the 150 still queued by the first.
    second = service.add("books", docs(0, 151))
    assert service.task(second)["details"]["pending"] == 151
    assert sum(chunk_sizes(service)) == 150 + 151
    service.drain()
    for task_id in (first, second):
        task = service.task(task_id)
        assert task["status"] == "succeeded", task
    assert service.task(second)["details"]["indexed"] == 151
    assert service.search("books", q="alpha")["total"] == 151
