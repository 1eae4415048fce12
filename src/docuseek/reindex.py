"""Rebuild a collection's index from PostgreSQL into a new generation, then switch to it.

While the new generation fills, the worker writes every change to both generations
(`Collection.write_generations`), so writes made during the rebuild land in it too;
searches keep reading the old generation until the switch.

Before the switch a verification pass compares the new generation with PostgreSQL and
fixes what differs. The copy streams a snapshot, so it can write a document that was
deleted meanwhile; an engine that forgets delete tombstones after a while (OpenSearch's
`index.gc_deletes`) would then let that stale copy bring the document back.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine

from docuseek import collections
from docuseek import queries as Q
from docuseek.errors import Conflict, NotFound
from docuseek.files.process import requeue_stale
from docuseek.reconcile import diff_versions, postgres_versions
from docuseek.schema import Collection
from docuseek.search.base import IndexOp, SearchBackend
from docuseek.search.ops import OpBuilder

log = logging.getLogger("docuseek.reindex")

Progress = Callable[[int, int], None]
BATCH = 1000
DROP_GRACE_SECONDS = 1.0  # let searches that loaded the old generation finish


@dataclass(frozen=True)
class ReindexSummary:
    collection: str
    generation: int
    documents: int
    caught_up: int
    seconds: float
    files_requeued: int = 0  # files another extractor version extracted, queued again


def _lock_key(collection_id: int) -> int:
    return zlib.crc32(f"docuseek-reindex-{collection_id}".encode())


@dataclass(frozen=True)
class ReindexLock:
    """A connection holding a collection's reindex lock (a session advisory lock): one
    reindex of a collection runs at a time, across processes."""

    conn: Connection
    collection_id: int

    def release(self) -> None:
        try:
            self.conn.execute(Q.RELEASE_REINDEX_LOCK, {"k": _lock_key(self.collection_id)})
            self.conn.commit()
        finally:
            self.conn.close()


def try_lock(engine: Engine, collection: Collection) -> ReindexLock:
    """The collection's reindex lock, or Conflict when another reindex holds it."""
    conn = engine.connect()
    try:
        key = _lock_key(collection.id)
        got = conn.execute(Q.TRY_REINDEX_LOCK, {"k": key}).scalar_one()
        conn.commit()
    except BaseException:
        conn.close()
        raise
    if not got:
        conn.close()
        raise Conflict(f"a reindex of collection {collection.name!r} is already running")
    return ReindexLock(conn, collection.id)


def reindex(
    engine: Engine,
    backend: SearchBackend,
    name: str,
    progress: Progress | None = None,
    batch_size: int = BATCH,
    *,
    held: ReindexLock | None = None,
) -> ReindexSummary:
    """Rebuild the collection into a new generation and switch to it. `held`: the lock,
    taken by the caller (who releases it), else taken and released here."""
    started = time.perf_counter()
    lock = held
    if lock is None:
        with engine.connect() as conn:
            lock = try_lock(engine, collections.load(conn, name))
    try:
        # Documents a file extractor of another version made are queued again: the
        # worker extracts them from their stored originals.
        requeued = requeue_stale(engine, name)
        summary = _rebuild(engine, backend, name, progress, batch_size, started)
        return replace(summary, files_requeued=requeued)
    finally:
        if held is None:
            lock.release()


def _rebuild(
    engine: Engine,
    backend: SearchBackend,
    name: str,
    progress: Progress | None,
    batch_size: int,
    started: float,
) -> ReindexSummary:
    with engine.begin() as conn:
        row = conn.execute(Q.SELECT_COLLECTION_FOR_UPDATE, {"name": name}).one()
        old = collections.load(conn, name)
        if old.building_generation is not None:
            # We hold the lock, so that build was abandoned (a killed reindex): start over.
            # It may have been switched to already in the engine: point searches back first.
            backend.activate_generation(old, old.generation)
            backend.drop_generation(old, old.building_generation)
        new_gen = max(row.generation, row.building_generation or 0) + 1
        conn.execute(Q.SET_BUILDING_GENERATION, {"id": old.id, "gen": new_gen})
        since = int(conn.execute(Q.CURRENT_VERSION).scalar_one())
        total = int(conn.execute(Q.COUNT_DOCUMENTS, {"cid": old.id}).scalar_one())
    collection = replace(old, building_generation=new_gen)
    backend.ensure_collection(collection, new_gen)

    builder = OpBuilder(backend)
    copied = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(
            builder.stream, {"cid": collection.id}
        )
        for chunk in result.partitions(batch_size):
            ops = builder.upserts(chunk)
            backend.index_batch(collection, new_gen, ops)
            copied += len(ops)
            if progress:
                progress(copied, total)
    # Writes committed since the copy began are also dual-written by the worker; applying
    # them here as well closes the window for rows a worker claimed before the switch.
    caught_up = 0
    with engine.connect() as conn:
        rows = conn.execute(builder.stream_since, {"cid": collection.id, "since": since}).all()
    for start in range(0, len(rows), batch_size):
        ops = builder.upserts(rows[start : start + batch_size])
        backend.index_batch(collection, new_gen, ops)
        caught_up += len(ops)
    caught_up += _verify(engine, backend, collection, new_gen, batch_size)

    live = replace(
        collection,
        generation=new_gen,
        building_generation=None,
        live_analysis=collection.analysis,
    )
    # Engine first, then PostgreSQL: both generations are complete and dual-written until
    # the commit below, so a search on either side of the switch sees a whole index.
    backend.activate_generation(live, new_gen)
    with engine.begin() as conn:
        conn.execute(
            Q.ACTIVATE_GENERATION,
            {
                "id": collection.id,
                "gen": new_gen,
                "language": collection.analysis.language,
                "unaccent": collection.analysis.unaccent,
            },
        )
    time.sleep(DROP_GRACE_SECONDS)
    backend.drop_generation(live, old.generation)
    return ReindexSummary(name, new_gen, copied, caught_up, time.perf_counter() - started)


REBUILD_ATTEMPTS = 5
REBUILD_RETRY_SECONDS = 2.0


def rebuild_in_background(engine: Engine, backend: SearchBackend, name: str) -> threading.Thread:
    """Reindex the collection in a thread of this process until its live generation has
    the schema's text analysis; searches keep reading the old generation meanwhile. A
    process that stops first leaves the rebuild to `docuseek reindex`."""
    thread = threading.Thread(
        target=_rebuild_until_current,
        args=(engine, backend, name),
        name=f"reindex-{name}",
        daemon=True,
    )
    thread.start()
    return thread


def _rebuild_until_current(engine: Engine, backend: SearchBackend, name: str) -> None:
    failures = 0
    while failures < REBUILD_ATTEMPTS:
        try:
            with engine.connect() as conn:
                if not collections.needs_rebuild(collections.load(conn, name)):
                    return
            reindex(engine, backend, name)
            continue  # the schema may have changed again meanwhile: check at once
        except NotFound:
            return  # deleted meanwhile: nothing left to rebuild
        except Conflict:
            pass  # another reindex runs: it may not have the newest analysis, check again
        except Exception:
            failures += 1
            log.exception("rebuilding collection %s failed; retrying", name)
        time.sleep(REBUILD_RETRY_SECONDS)
    log.error(
        "collection %s still needs a rebuild: run `docuseek reindex --collection %s`", name, name
    )


def _verify(
    engine: Engine, backend: SearchBackend, collection: Collection, gen: int, batch_size: int
) -> int:
    """Make generation `gen` agree with PostgreSQL; returns how many documents it fixed."""
    with engine.connect() as conn:
        # Read first: any version assigned later is higher, so these deletes cannot win
        # over a document re-created meanwhile.
        delete_version = int(conn.execute(Q.CURRENT_VERSION).scalar_one())
        expected = postgres_versions(conn, collection)
    drift, _ = diff_versions(expected, backend.iter_versions(replace(collection, generation=gen)))
    builder = OpBuilder(backend)
    fixes: list[IndexOp] = [builder.delete(doc_id, delete_version) for doc_id in drift.extra]
    ids = drift.missing + drift.stale
    for start in range(0, len(ids), batch_size):
        with engine.connect() as conn:
            rows = conn.execute(
                Q.SELECT_DOCUMENTS_BY_IDS,
                {"cid": collection.id, "ids": ids[start : start + batch_size]},
            ).all()
        fixes += builder.upserts(rows)
    for start in range(0, len(fixes), batch_size):
        backend.index_batch(collection, gen, fixes[start : start + batch_size])
    return len(fixes)
