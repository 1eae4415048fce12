"""Worker failure handling with real faults: a document the index rejects, a lost index."""

from __future__ import annotations

import time

from sqlalchemy import text

from docuseek.worker import Worker
from tests.helpers import BOOK_FIELDS, Service


def test_a_bad_document_fails_its_task_and_the_rest_land(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    # A real refusal from the server for one row (as a constraint added by hand would
    # give): validation keeps out what the index cannot take, so nothing else produces one.
    with service.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF NEW.id = 'bad' THEN RAISE EXCEPTION 'value out of range for bad'"
                " USING ERRCODE = '22003'; END IF; RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_bad BEFORE INSERT OR UPDATE ON docuseek_index.c1_g1"
                " FOR EACH ROW EXECUTE FUNCTION refuse_bad()"
            )
        )
    task_id = service.add(
        "books",
        [
            {"id": "good1", "title": "alpha"},
            {"id": "bad", "body": "beta"},
            {"id": "good2", "title": "alpha"},
        ],
    )
    service.drain()
    task = service.task(task_id)
    assert task["status"] == "failed"
    assert "document 'bad'" in task["error"] and "out of range" in task["error"]
    assert task["details"] == {"received": 3, "indexed": 2, "failed": 1, "pending": 0}
    assert {h["id"] for h in service.search("books", q="alpha")["hits"]} == {"good1", "good2"}
    # The document itself is stored: PostgreSQL is the record, the index is derived.
    assert service.client.get("/collections/books/documents/bad").status_code == 200


def test_batch_failures_back_off_then_fail_the_task(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    task_id = service.add("books", [{"id": "1", "title": "alpha"}])
    # A real fault from the server: the index table refuses writes (as a revoked grant would).
    with service.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'permission denied for c1_g1' USING ERRCODE = '42501';"
                " END $$;"
                " CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON docuseek_index.c1_g1"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )
    slow = service.settings.model_copy(update={"worker_max_attempts": 3, "worker_backoff_base": 60})
    outcome = Worker(service.engine, service.backend, slow).run_batch()
    assert outcome.retried
    with service.engine.connect() as conn:
        attempts, delay, error = conn.execute(
            text(
                "SELECT attempts, extract(epoch FROM available_at - now()), last_error FROM outbox"
            )
        ).one()
    assert attempts == 1 and 50 < delay <= 60 and "c1_g1" in error
    assert service.task(task_id)["status"] == "processing"
    assert Worker(service.engine, service.backend, slow).run_batch().claimed == 0  # backing off

    with service.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET available_at = now()"))
    fast = slow.model_copy(update={"worker_backoff_base": 0.01})
    Worker(service.engine, service.backend, fast).run(until_empty=True)
    task = service.task(task_id)
    assert task["status"] == "failed"
    assert "gave up after 3 attempts" in task["error"]
    with service.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0


def test_a_notification_wakes_idle_workers(service: Service) -> None:
    from docuseek.worker import WorkerPool
    from tests.helpers import wait_for

    service.create_collection("books", BOOK_FIELDS)
    # Poll once a minute: only the outbox notification can make this task finish in time.
    sleepy = service.settings.model_copy(update={"worker_poll_interval": 60.0})
    pool = WorkerPool(service.engine, service.backend, sleepy)
    threads = pool.start()
    try:
        time.sleep(1.0)  # let the workers go idle and the listener subscribe
        task_id = service.add("books", [{"id": "n1", "title": "notified"}])
        wait_for(lambda: service.task(task_id)["status"] == "succeeded", 15, "the woken worker")
    finally:
        pool.stop()
        for thread in threads:
            thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads)  # stop() wakes idle workers too
