"""Run a loader on N threads, as every ingest baseline does, and report its throughput."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def scalar(row: tuple[Any, ...] | None) -> Any:
    """The first column of a statement's one row (no row at all is a bug of the harness)."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row[0]


def run_parallel(work: Callable[[int], None], n: int) -> None:
    """Run work(0) … work(n-1) on n threads; re-raise the first error any of them raised."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def ingest_result(docs: int, batch: int, concurrency: int, seconds: float) -> dict[str, Any]:
    """The throughput record every loader returns (Docuseek, the raw engines, the peers)."""
    return {
        "docs": docs,
        "batch": batch,
        "concurrency": concurrency,
        "seconds": seconds,
        "docs_per_s": docs / seconds,
    }
