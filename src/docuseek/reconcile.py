"""Compare a collection's documents in PostgreSQL (the system of record) with its index.

Drift is reported in three kinds: `missing` (in PostgreSQL, not searchable), `stale` (the
index holds another version) and `extra` (searchable, gone from PostgreSQL). Ids with
changes still queued in the outbox are in flight, not drift: they are counted apart.
`repair` queues the fixes through the outbox, in one transaction, for the worker to apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from docuseek import collections
from docuseek import queries as Q
from docuseek.ingest import queued_ids
from docuseek.schema import Collection
from docuseek.search.base import SearchBackend


@dataclass
class Drift:
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.extra)


@dataclass
class ReconcileReport:
    collection: str
    generation: int
    documents: int  # in PostgreSQL
    indexed: int  # searchable in the index
    in_flight: int  # ids with queued changes, left out of the comparison
    drift: Drift
    queued: int = 0  # documents queued by --repair


def diff_versions(
    expected: dict[str, int], actual: Iterable[tuple[str, int]], skip: set[str] | None = None
) -> tuple[Drift, int]:
    """Compare id → version in PostgreSQL with the index's (id, version) pairs.

    Returns the drift and how many documents the index holds. `expected` is consumed.
    """
    skip = skip or set()
    drift = Drift()
    indexed = 0
    for doc_id, version in actual:
        indexed += 1
        want = expected.pop(doc_id, None)
        if doc_id in skip:
            continue
        if want is None:
            drift.extra.append(doc_id)
        elif want != version:
            drift.stale.append(doc_id)
    drift.missing = sorted(doc_id for doc_id in expected if doc_id not in skip)
    drift.stale.sort()
    drift.extra.sort()
    return drift, indexed


def postgres_versions(conn: Connection, collection: Collection) -> dict[str, int]:
    # The whole id → version map in memory (~100 bytes a document): ids come back from
    # PostgreSQL and OpenSearch in different orders, so a merge join is not an option.
    result = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        Q.STREAM_DOCUMENT_VERSIONS, {"cid": collection.id}
    )
    return {doc_id: int(version) for doc_id, version in result}


def _pending_ids(engine: Engine, collection: Collection) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(Q.PENDING_DOC_IDS, {"cid": collection.id}).scalars())


def reconcile(
    engine: Engine, backend: SearchBackend, name: str, *, repair: bool = False
) -> ReconcileReport:
    with engine.connect() as conn:
        collection = collections.load(conn, name)
    pending = _pending_ids(engine, collection)
    with engine.connect() as conn:
        expected = postgres_versions(conn, collection)
    documents = len(expected)
    index_versions = list(backend.iter_versions(collection))
    # Rows queued while we read are in flight too; take the union of before and after.
    pending |= _pending_ids(engine, collection)
    drift, indexed = diff_versions(expected, index_versions, pending)
    report = ReconcileReport(
        collection=name,
        generation=collection.generation,
        documents=documents,
        indexed=indexed,
        in_flight=len(pending),
        drift=drift,
    )
    if repair and drift.total:
        report.queued = queue_repairs(engine, collection, drift)
    return report


def queue_repairs(engine: Engine, collection: Collection, drift: Drift) -> int:
    """Queue upserts for missing and stale ids and deletes for extra ones, atomically."""
    with engine.begin() as conn:
        collections.load_for_write(conn, collection.name)
        upserts = queued_ids(
            conn.execute(
                Q.QUEUE_REPAIR_UPSERTS, {"cid": collection.id, "ids": drift.missing + drift.stale}
            )
        )
        deletes = queued_ids(
            conn.execute(Q.QUEUE_REPAIR_DELETES, {"cid": collection.id, "ids": drift.extra})
        )
    return len(upserts) + len(deletes)
