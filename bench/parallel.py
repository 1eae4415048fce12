"""Run a loader on N threads, as every ingest baseline does."""

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
