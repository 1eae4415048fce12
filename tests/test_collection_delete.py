"""Deleting a collection while a worker holds a batch of its outbox rows."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import text

from tests.conftest import BOOK_FIELDS, Service, wait_for


def test_delete_waits_for_a_batch_in_flight_instead_of_deadlocking(service: Service) -> None:
    """A worker locks its claimed outbox rows, then updates their tasks (the `processing`
    mark, then the settle). A delete that failed the tasks before reaching the outbox
    rows deadlocked with it: PostgreSQL aborted one side, and the DELETE answered 500
    (found by fuzzing). Here the worker's steps are replayed on a connection of our own."""
    service.create_collection("books", BOOK_FIELDS)
    task_id = service.add("books", [{"id": str(i), "title": "t"} for i in range(3)])
    result: dict[str, Any] = {}

    with service.engine.connect() as worker:
        # The claim: the batch's outbox rows, locked until the batch commits.
        claimed = worker.execute(text("SELECT id FROM outbox FOR UPDATE")).scalars().all()
        assert claimed

        def delete() -> None:
            result["response"] = service.client.delete("/collections/books")

        thread = threading.Thread(target=delete)
        thread.start()

        def delete_is_waiting() -> bool:
            with service.engine.connect() as conn:
                return bool(
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' AND query ILIKE '%outbox%'"
                            " OR wait_event_type = 'Lock' AND query ILIKE '%collections%'"
                        )
                    ).scalar_one()
                )

        wait_for(delete_is_waiting, 10, "the DELETE to wait for the claimed rows")
        # The settle: the worker's own rows, then their task. With the tasks locked by
        # the DELETE first, this waited for it while it waited for us.
        worker.execute(text("DELETE FROM outbox WHERE id = ANY(:ids)"), {"ids": list(claimed)})
        worker.execute(
            text("UPDATE tasks SET status = 'succeeded', pending = 0 WHERE id = :id"),
            {"id": task_id},
        )
        worker.commit()
        thread.join(timeout=30)

    assert not thread.is_alive()
    assert result["response"].status_code == 204, result["response"].text
    assert service.client.get("/collections/books").status_code == 404
