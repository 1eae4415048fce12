"""Collections created, changed and deleted while other requests and the worker run."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from docuseek import collections, ingest
from docuseek.errors import NotFound
from docuseek.schema import Collection, CollectionSchema
from docuseek.search.postgres import PostgresBackend
from tests.helpers import BOOK_FIELDS, Racer, Service, wait_for


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


def test_writes_racing_a_collection_delete_get_404(service: Service) -> None:
    """A write that loaded the collection just before a DELETE committed went on to a
    foreign-key violation (POST) or a deadlock with the DELETE's cascade (DELETE of a
    document): both 500s, found by a concurrent fuzz. Writes now hold the collection's
    row from their first statement, so they wait for the DELETE and then find it gone."""
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "t"}])
    service.drain()
    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'books'")).scalar_one()
    writes = {
        "post": lambda: service.client.post("/collections/books/documents", json=[{"id": "2"}]),
        "delete": lambda: service.client.delete("/collections/books/documents/1"),
    }
    responses: dict[str, Any] = {}
    with service.engine.connect() as deleting:
        # The DELETE's first step: the collection's row, FOR UPDATE.
        deleting.execute(text("SELECT 1 FROM collections WHERE id = :id FOR UPDATE"), {"id": cid})
        threads = [
            threading.Thread(target=lambda k=k, w=w: responses.__setitem__(k, w()))
            for k, w in writes.items()
        ]
        for thread in threads:
            thread.start()

        def both_waiting() -> bool:
            with service.engine.connect() as conn:
                waiting = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar_one()
            return int(waiting) >= 2

        wait_for(both_waiting, 10, "both writes to wait for the collection's row")
        # Its cascade, then the row itself.
        deleting.execute(text("DELETE FROM documents WHERE collection_id = :id"), {"id": cid})
        deleting.execute(text("DELETE FROM collections WHERE id = :id"), {"id": cid})
        deleting.commit()
        for thread in threads:
            thread.join(timeout=30)
    for name, response in responses.items():
        assert response.status_code == 404, (name, response.text)
        assert "does not exist" in response.json()["error"]["message"]


def test_put_racing_a_delete_creates_the_collection_again(service: Service) -> None:
    """The PUT found the name taken, then the row gone once the DELETE committed: 500
    (NoResultFound), found by a concurrent fuzz. It now creates the collection anew."""
    service.create_collection("books", BOOK_FIELDS)
    with service.engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'books'")).scalar_one()
    result: dict[str, Any] = {}
    with service.engine.connect() as deleting:
        deleting.execute(text("SELECT 1 FROM collections WHERE id = :id FOR UPDATE"), {"id": cid})
        body = {"fields": {"title": {"type": "text"}}}
        thread = threading.Thread(
            target=lambda: result.__setitem__(
                "put", service.client.put("/collections/books", json=body)
            )
        )
        thread.start()

        def put_is_waiting() -> bool:
            with service.engine.connect() as conn:
                return bool(
                    conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                    ).scalar_one()
                )

        wait_for(put_is_waiting, 10, "the PUT to wait for the collection's row")
        deleting.execute(text("DELETE FROM collections WHERE id = :id"), {"id": cid})
        deleting.commit()
        thread.join(timeout=30)
    assert result["put"].status_code == 201, result["put"].text
    assert service.client.get("/collections/books").json()["fields"] == {
        "title": {"type": "text", "facet": False}
    }
    assert service.search("books", q="anything")["total"] == 0


def test_a_lost_index_is_a_503_that_says_how_to_rebuild_it(service: Service) -> None:
    """A search that found no index table, even after reloading the collection, answered
    500 (a search of a collection whose table was not yet created, found by a concurrent
    fuzz; the table is now created before the collection commits)."""
    service.create_collection("books", BOOK_FIELDS)
    with service.engine.begin() as conn:
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'books'")).scalar_one()
        conn.execute(text(f"DROP TABLE docuseek_index.c{int(cid)}_g1"))
    response = service.client.get("/collections/books/search", params={"q": "x"})
    assert response.status_code == 503, response.text
    assert "docuseek reindex --collection books" in response.json()["error"]["message"]


def test_describing_a_collection_deleted_meanwhile_is_a_404(service: Service) -> None:
    """PUT describes the collection it stored on a new connection; a DELETE in between
    made that a 500 (NoResultFound), found by the concurrent fuzz."""
    service.create_collection("books", BOOK_FIELDS)
    with service.engine.connect() as conn:
        loaded = collections.load(conn, "books")
    assert service.client.delete("/collections/books").status_code == 204
    with service.engine.connect() as conn, pytest.raises(NotFound):
        collections.describe(conn, loaded)


class DeleteDuringIndexChange(PostgresBackend):
    """A PostgreSQL backend that starts a DELETE of the collection at the moment a PUT
    changes its index, after the PUT committed (what the concurrent fuzz hit by chance)."""

    def __init__(self, service: Service) -> None:
        super().__init__(service.engine)
        self.service = service
        self.racer: Racer | None = None

    def ensure_collection(self, collection: Collection, generation: int) -> None:
        if self.racer is None:
            self.racer = Racer(lambda: self.service.client.delete("/collections/books"))
        super().ensure_collection(collection, generation)


def test_a_delete_waits_for_a_schema_change_to_reach_the_index(service: Service) -> None:
    """Before, the DELETE dropped the table between the PUT's commit and its index
    change, which then failed (500) or made the table again for a collection that was
    gone. Now the DELETE waits and goes through after."""
    service.create_collection("books", BOOK_FIELDS)
    backend = DeleteDuringIndexChange(service)
    schema = CollectionSchema.model_validate(
        {"fields": {**BOOK_FIELDS, "isbn": {"type": "keyword"}}}
    )
    collection, created = collections.put(service.engine, backend, "books", schema)
    assert not created and "isbn" in collection.fields
    assert backend.racer is not None
    response = backend.racer.finish()
    assert response.status_code == 204, response.text
    with service.engine.connect() as conn:
        table = conn.execute(
            text("SELECT to_regclass(:t)"), {"t": f"docuseek_index.c{collection.id}_g1"}
        ).scalar()
    assert table is None  # dropped with the collection, not made again


def test_a_search_between_a_type_change_and_its_table_change_is_a_503(service: Service) -> None:
    """The schema says a field is boolean while its column is still text[] (the table
    changes after the schema commits, and other api processes keep a schema copy for 2
    s): the filter's SQL failed to type-check, a 500 in the concurrent fuzz. The search
    reloads the collection and tries again, then answers 503."""
    service.create_collection("books", BOOK_FIELDS)
    service.add("books", [{"id": "1", "title": "lazy", "section": "x"}])
    service.drain()
    with service.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE collections SET fields = jsonb_set(fields, '{section,type}', :type)"
                " WHERE name = 'books'"
            ),
            {"type": '"boolean"'},
        )
    collections.forget("books")
    response = service.client.get(
        "/collections/books/search", params={"q": "lazy", "filter": "section:true"}
    )
    assert response.status_code == 503, response.text
    assert "does not match the schema" in response.json()["error"]["message"]


def test_a_schema_change_gives_the_index_the_newest_schema(service: Service) -> None:
    """A PUT changes the index after its commit; a second PUT could commit in between,
    and the first then applied its older schema's DDL after the second's (a keyword
    column in the GIN index made bigint: 500, or a table that no longer fit the schema;
    also a deadlock between the two). The DDL step reads the schema again under a lock
    that serializes it: here it is handed the older schema after the newer committed."""
    service.create_collection("books", {"title": {"type": "text"}, "code": {"type": "keyword"}})
    with service.engine.connect() as conn:
        older = collections.load(conn, "books")
    service.create_collection("books", {"title": {"type": "text"}, "code": {"type": "integer"}})
    collections._apply_to_index(service.engine, service.backend, older)
    service.add("books", [{"id": "1", "title": "numbered", "code": 7}])
    service.drain()
    assert [h["id"] for h in service.search("books", filter="code>=5")["hits"]] == ["1"]


def test_concurrent_batches_with_the_same_ids_do_not_deadlock(service: Service) -> None:
    """Two batches upserting the same documents in opposite orders locked them in
    opposite orders: deadlock, 500 (concurrent fuzz). Batches are written in id order."""
    service.create_collection("books", BOOK_FIELDS)
    docs = [{"id": f"d{i:04d}", "title": f"title {i}"} for i in range(2000)]
    errors: list[BaseException] = []
    for round_ in range(4):
        batches = [
            [{**d, "body": f"round {round_}"} for d in docs],
            [{**d, "body": f"round {round_} again"} for d in reversed(docs)],
        ]
        start = threading.Barrier(2)

        def write(batch: list[dict[str, Any]], start: threading.Barrier = start) -> None:
            start.wait()
            try:
                ingest.upsert_documents(service.engine, "books", batch)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []
