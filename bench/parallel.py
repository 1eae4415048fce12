"""Run a loader on N threads, as every ingest baseline does, and report its throughput."""

from __future__ import annotations

import threading
from collections.abc import Callable


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


def ingest_result(docs: int, batch: int, concurrency: int, seconds: float) -> dict:
    """The throughput record every loader returns (Docuseek, the raw engines, the peers)."""
    return {
        "docs": docs,
        "batch": batch,
        "concurrency": concurrency,
        "seconds": seconds,
        "docs_per_s": docs / seconds,
    }
