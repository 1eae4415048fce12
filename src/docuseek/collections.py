"""Collections: create, update, read and delete schemas; load them for the backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, Engine

from docuseek import queries as Q
from docuseek.errors import Conflict, InvalidInput, NotFound, SearchUnavailable
from docuseek.schema import (
    COLLECTION_NAME_RE,
    DEFAULT_LANGUAGE,
    Collection,
    CollectionSchema,
    FieldSpec,
    TextAnalysis,
    coerce_value,
)
from docuseek.search.base import (
    BackendUnavailable,
    GenerationMissing,
    SchemaConflict,
    SearchBackend,
)
from docuseek.search.query import SearchSettings

T = TypeVar("T")

log = structlog.get_logger("docuseek.collections")


def check_name(name: str) -> None:
    if not COLLECTION_NAME_RE.match(name):
        raise InvalidInput(
            f"collection name {name!r} must match {COLLECTION_NAME_RE.pattern}",
            details=[{"loc": ["path", "name"], "msg": "invalid collection name"}],
        )


def _row_to_collection(row: Any) -> Collection:
    return Collection.from_row(
        row.id,
        row.name,
        row.fields,
        row.generation,
        row.building_generation,
        row.index_phrases,
        TextAnalysis(row.language, row.unaccent),
        TextAnalysis(row.live_language, row.live_unaccent),
        row.search_settings,
    )


def load(conn: Connection, name: str) -> Collection:
    return _loaded(name, conn.execute(Q.SELECT_COLLECTION, {"name": name}).first())


def load_for_write(conn: Connection, name: str) -> Collection:
    """load() for a transaction that writes the collection's documents or queue rows: its
    row is held in KEY SHARE from the start (the foreign keys would take that lock later,
    after the document rows). Every transaction then locks the collection's row first, so
    a concurrent DELETE, which locks it FOR UPDATE and then deletes those rows, waits or
    is waited for instead of deadlocking (a 500), and a
    collection deleted meanwhile is a 404 rather than a foreign-key violation."""
    return _loaded(name, conn.execute(Q.SELECT_COLLECTION_FOR_WRITE, {"name": name}).first())


def load_settled(engine: Engine, name: str) -> Collection:
    """load(), after a DELETE of the collection in flight has committed (its FOR UPDATE
    holds off KEY SHARE): for a search that found no index, which then sees the
    collection gone (404) rather than half deleted (503)."""
    with engine.begin() as conn:
        return load_for_write(conn, name)


def _loaded(name: str, row: Any) -> Collection:
    if row is None:
        raise NotFound(f"collection {name!r} does not exist")
    return _row_to_collection(row)


# Searches read a collection's schema on every request; a short-lived per-process copy
# saves a round trip. Changes made in this process drop it at once; in other processes it
# lasts CACHE_SECONDS (a switched generation is caught by the search's GenerationMissing
# retry, which reloads).
CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, Collection]] = {}


def load_cached(engine: Engine, name: str) -> Collection:
    hit = _cache.get(name)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    with engine.connect() as conn:
        collection = load(conn, name)
    _cache[name] = (now + CACHE_SECONDS, collection)
    return collection


def forget(name: str) -> None:
    _cache.pop(name, None)


def load_by_id(conn: Connection, collection_id: int) -> Collection | None:
    row = conn.execute(Q.SELECT_COLLECTION_BY_ID, {"id": collection_id}).first()
    return None if row is None else _row_to_collection(row)


def retry_on_missing_generation(
    collection: Collection,
    run: Callable[[Collection], T],
    reload: Callable[[], Collection | None],
    on_unchanged: Callable[[Collection], None] | None = None,
) -> tuple[Collection, T]:
    """`run(collection)`; if the backend finds a generation missing, reload the collection
    and run once more (a reindex switched generations, or a field changed type, since it
    was loaded). `reload` returns None for a collection gone meanwhile: the error stands.
    `on_unchanged` gets the reloaded collection when its generations did not change (the
    engine lost the index) before the second run; a second GenerationMissing propagates.
    Returns the collection the run succeeded with, and the run's result."""
    try:
        return collection, run(collection)
    except GenerationMissing:
        reloaded = reload()
        if reloaded is None:
            raise
        if on_unchanged is not None and reloaded.write_generations == collection.write_generations:
            on_unchanged(reloaded)
    return reloaded, run(reloaded)


def _check_existing_documents(
    conn: Connection, collection_id: int, name: str, spec: FieldSpec
) -> None:
    """A field added (or retyped) later must fit the documents already stored."""
    for doc_id, value in conn.execute(
        Q.DOCUMENTS_WITH_FIELD, {"cid": collection_id, "field": name}
    ):
        try:
            coerce_value(spec, value)
        except ValueError as exc:
            raise Conflict(
                f"field {name!r} ({spec.type}) does not fit stored document {doc_id!r}: {exc}",
                details=[{"loc": ["body", "fields", name], "document": doc_id}],
            ) from None


def put(
    engine: Engine, backend: SearchBackend, name: str, schema: CollectionSchema
) -> tuple[Collection, bool]:
    """Create or update a collection. Returns (collection, created)."""
    check_name(name)
    fields_json = json.dumps(
        {k: v.model_dump(exclude_none=True) for k, v in schema.fields.items()}, sort_keys=True
    )
    with engine.begin() as conn:
        new_id, row = None, None
        for _ in range(2):  # a DELETE can remove the row between the two statements
            new_id = conn.execute(
                Q.INSERT_COLLECTION,
                {
                    "name": name,
                    "fields": fields_json,
                    "index_phrases": schema.index_phrases_or_default,
                    "language": schema.language or DEFAULT_LANGUAGE,
                    "unaccent": bool(schema.unaccent),
                },
            ).scalar()
            if new_id is not None:
                break
            row = conn.execute(Q.SELECT_COLLECTION_FOR_UPDATE, {"name": name}).first()
            if row is not None:
                break
        if new_id is not None:
            collection, created = load(conn, name), True
            with _engine_errors(name):
                # Before the row commits (a second PUT of the name waits for it): clear
                # what a deleted collection of this name may have left in the engine, so
                # its documents cannot come back; then create the index, so that no
                # search finds the collection without one. 503 if the engine is down.
                backend.drop_collection(collection, conn)
                backend.ensure_collection(collection, collection.generation)
        elif row is not None:
            collection, created = _update(conn, backend, row, schema, fields_json), False
        else:
            raise Conflict(f"collection {name!r} was deleted and created meanwhile; try again")
    forget(name)
    if not created:
        _apply_to_index(engine, backend, collection)
    return collection, created


def _apply_to_index(engine: Engine, backend: SearchBackend, collection: Collection) -> None:
    """A schema change reaches the index after its commit: `ensure_collection` may wait
    for index writes in flight, which must not wait behind the FOR UPDATE (the
    `SearchBackend` contract). Under NO KEY UPDATE a DELETE cannot drop the index
    meanwhile (the change would fail, or make an index again for a collection that is
    gone), and the index changes of two PUTs cannot interleave (an older schema's could
    come last). The schema is read again under the lock: the newest one is what the index
    gets."""
    name = collection.name
    with engine.begin() as conn:
        lock = {"id": collection.id}
        current = conn.execute(Q.SELECT_COLLECTION_FOR_INDEX_CHANGE, lock).first()
        if current is None:
            raise NotFound(f"collection {name!r} was deleted meanwhile")
        latest = _row_to_collection(current)
        try:
            for generation in latest.write_generations:
                backend.ensure_collection(latest, generation)
        except BackendUnavailable as exc:  # the engine went away since check_schema
            log.warning("search backend unavailable", collection=name, error=str(exc))
            raise SearchUnavailable(
                f"the schema of {name!r} was stored, but the search engine could not be"
                " updated (unavailable): PUT it again once the engine answers"
            ) from exc


def _update(
    conn: Connection, backend: SearchBackend, row: Any, schema: CollectionSchema, fields_json: str
) -> Collection:
    old = _row_to_collection(row)
    name = old.name
    if schema.index_phrases not in (None, old.index_phrases):
        # Index tables are laid out for it when a collection is created.
        raise Conflict(
            f"index_phrases is {str(old.index_phrases).lower()} for collection"
            f" {name!r} and is set only when a collection is created: create a new"
            " collection to change it",
            details=[{"loc": ["body", "index_phrases"]}],
        )
    analysis = TextAnalysis(
        schema.language or old.analysis.language,
        old.analysis.unaccent if schema.unaccent is None else schema.unaccent,
    )
    if analysis != old.analysis and old.building_generation is not None:
        # The generation being built is written with the schema's analysis: a change now
        # would mix two analyses in it.
        raise Conflict(
            f"collection {name!r} is being reindexed; change its language or unaccent when"
            " the reindex has finished",
            details=[{"loc": ["body", "language"]}],
        )
    new = Collection.from_row(
        row.id,
        name,
        json.loads(fields_json),
        row.generation,
        row.building_generation,
        old.index_phrases,
        analysis,
        old.live_analysis,
        row.search_settings,
    )
    for fname, spec in new.fields.items():
        before = old.fields.get(fname)
        if before is None or before.type != spec.type:
            _check_existing_documents(conn, old.id, fname, spec)
    with _engine_errors(name):
        backend.check_schema(new)  # 503 if the engine is down, 409 if it cannot
    conn.execute(
        Q.UPDATE_COLLECTION_FIELDS,
        {
            "id": old.id,
            "fields": fields_json,
            "language": analysis.language,
            "unaccent": analysis.unaccent,
        },
    )
    # With a new analysis the rebuild the caller starts indexes every document anyway.
    if _index_affecting(old, new) and not needs_rebuild(new):
        # Text fields or weights changed: every document is indexed again.
        conn.execute(Q.REQUEUE_ALL_DOCUMENTS, {"cid": old.id, "task_id": None})
    return new


@contextmanager
def _engine_errors(name: str) -> Iterator[None]:
    """The search engine's refusals as API errors, raised before anything commits."""
    try:
        yield
    except BackendUnavailable as exc:
        # The driver's text can name hosts: it goes to the log only.
        log.warning("search backend unavailable", collection=name, error=str(exc))
        raise SearchUnavailable(
            "the search backend is unavailable; nothing was changed, try again"
        ) from exc
    except SchemaConflict as exc:
        raise Conflict(
            f"{exc}; the schema was not changed. To change a field's type on this engine,"
            f" PUT the schema without the field, run `docuseek reindex --collection {name}`,"
            " then PUT it with the new type",
            details=[
                {"loc": ["body", "fields", field], "msg": why} for field, why in exc.fields.items()
            ],
        ) from exc


def needs_rebuild(collection: Collection) -> bool:
    """Whether the live index was built with another text analysis than the schema's: only
    a new generation (`reindex`) can change it without searches seeing a mix."""
    return collection.analysis != collection.live_analysis


def _index_affecting(old: Collection, new: Collection) -> bool:
    def shape(c: Collection) -> list[tuple[str, str, str]]:
        return sorted((f.name, f.type, f.weight) for f in c.fields.values())

    return shape(old) != shape(new)


def describe(conn: Connection, collection: Collection) -> dict[str, Any]:
    # Deleted since it was loaded (a concurrent DELETE): a 404, as a moment later.
    row = conn.execute(Q.SELECT_COLLECTION, {"name": collection.name}).first()
    if row is None:
        raise NotFound(f"collection {collection.name!r} does not exist")
    return {
        "name": collection.name,
        "fields": row.fields,
        "index_phrases": collection.index_phrases,
        "language": row.language,
        "unaccent": row.unaccent,
        "search_settings": collection.search_settings.model_dump(),
        "documents": conn.execute(Q.COUNT_DOCUMENTS, {"cid": collection.id}).scalar_one(),
        "pending_tasks": conn.execute(
            Q.COUNT_PENDING_TASKS, {"name": collection.name}
        ).scalar_one(),
        "generation": collection.generation,
        "reindexing": collection.building_generation is not None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def delete(engine: Engine, backend: SearchBackend, name: str) -> None:
    with engine.begin() as conn:
        # Locks in the worker's order, outbox rows before tasks: the collection's row first
        # (writers' foreign keys wait behind it, so no new outbox rows), then its outbox
        # rows (waiting for a worker's batch that holds some to settle), then the tasks.
        # Tasks first would deadlock with a worker settling a batch.
        row = conn.execute(Q.SELECT_COLLECTION_FOR_UPDATE, {"name": name}).first()
        collection = _loaded(name, row)
        conn.execute(Q.DELETE_OUTBOX_OF_COLLECTION, {"id": collection.id})
        conn.execute(Q.FAIL_PENDING_TASKS_OF_COLLECTION, {"name": name})
        conn.execute(Q.DELETE_COLLECTION, {"id": collection.id})
        with _engine_errors(name):
            # Before the commit, so the index goes too or nothing does (503), and so that
            # a PUT creating the name again, which waits for this row, comes after: dropped
            # after the commit, the old index's names could take the new one's index.
            backend.drop_collection(collection, conn)
    forget(name)


def list_all(conn: Connection) -> list[Collection]:
    return [_row_to_collection(row) for row in conn.execute(Q.LIST_COLLECTIONS)]


def put_settings(engine: Engine, name: str, settings: SearchSettings) -> Collection:
    """Replace the collection's search settings; queries read them when parsed, so nothing
    is reindexed."""
    with engine.begin() as conn:
        row = conn.execute(Q.SELECT_COLLECTION_FOR_UPDATE, {"name": name}).first()
        collection = _loaded(name, row)
        text_fields = {f.name for f in collection.text_fields}
        for i, field in enumerate(settings.typo_tolerance.disable_on_fields):
            if field not in text_fields:
                message = f"disable_on_fields: {field!r} is not a text field of {name!r}"
                loc = ["body", "typo_tolerance", "disable_on_fields", i]
                raise InvalidInput(message, details=[{"loc": loc, "msg": message}])
        conn.execute(
            Q.UPDATE_SEARCH_SETTINGS,
            {"id": collection.id, "settings": settings.model_dump_json()},
        )
    forget(name)
    return replace(collection, search_settings=settings)
