"""The api runs at most DOCUSEEK_SEARCH_CONCURRENCY searches at once; the rest wait in order.

Observed on the server: the index table is locked, so every search that reaches
PostgreSQL waits there on the lock, where pg_stat_activity shows it; a search held back
by the api never gets that far.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from docuseek import collections
from docuseek.api.app import create_app
from docuseek.search.base import SearchBackend
from docuseek.search.postgres.layout import table_name
from docuseek.settings import Settings
from docuseek.worker import Worker
from tests.helpers import ADMIN_KEY

WAITING_SEARCHES = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE application_name = 'docuseek-search' AND wait_event_type = 'Lock'"
)


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("limit", [1, 2])
def test_searches_beyond_the_limit_wait_in_the_api(
    limit: int, settings: Settings, engine: Engine, backend: SearchBackend
) -> None:
    settings = settings.model_copy(update={"search_concurrency": limit})
    app = create_app(settings, engine, backend)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        client.put("/collections/docs", json={"fields": {"body": {"type": "text"}}})
        client.post("/collections/docs/documents", json=[{"id": "1", "body": "a lock test"}])
        Worker(engine, backend, settings).run(until_empty=True)
        collection = collections.load_cached(engine, "docs")
        statuses: list[int] = []

        def search() -> None:
            response = client.get("/collections/docs/search", params={"q": "lock"})
            statuses.append(response.status_code)

        searches = [threading.Thread(target=search) for _ in range(limit + 2)]
        # The observer in autocommit: a transaction keeps its first view of pg_stat_activity.
        observer = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as locker, observer:
            locker.execute(text(f"LOCK TABLE {table_name(collection, collection.generation)}"))
            for thread in searches:
                thread.start()

            def waiting() -> int:
                return int(observer.execute(text(WAITING_SEARCHES)).scalar_one())

            reached = _wait_for(lambda: waiting() >= limit, 30)
            time.sleep(0.5)  # time for any search the api lets through to get there too
            waited = waiting()
            locker.rollback()  # releases the lock: the held-back searches run in turn
        for thread in searches:
            thread.join(60)
    # Asserted once the client is closed (a failure inside its block hangs its shutdown).
    assert reached, "no search reached PostgreSQL"
    assert waited == limit
    assert statuses == [200] * (limit + 2)


def test_the_default_limit_follows_the_cpus(settings: Settings) -> None:
    import os

    assert settings.search_concurrency is None
    assert settings.effective_search_concurrency() == len(os.sched_getaffinity(0)) + 1
