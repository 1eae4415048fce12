"""Races between requests, on every backend (see conftest.py)."""

from __future__ import annotations

from typing import Any

from docuseek import collections
from docuseek.schema import Collection
from docuseek.search.base import SearchBackend
from tests.helpers import BOOK_FIELDS, Racer, Service


class SearchAfterDrop:
    """The backend under test, except that right after a DELETE drops the collection's
    index, before the DELETE commits, a search of it starts (a race of the fuzz)."""

    def __init__(self, backend: SearchBackend, service: Service, name: str) -> None:
        self.backend, self.service, self.name = backend, service, name
        self.racer: Racer | None = None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.backend, attr)

    def drop_collection(self, collection: Collection, conn: Any = None) -> None:
        self.backend.drop_collection(collection, conn)
        search = f"/collections/{self.name}/search"
        self.racer = Racer(lambda: self.service.client.get(search))


def test_a_search_racing_a_delete_gets_404(service: Service) -> None:
    """A search between the drop of a deleted collection's index and the DELETE's commit
    found the collection without an index: 503 ("rebuild it"). PostgreSQL now drops the
    table in the DELETE's transaction; a search that finds no index (OpenSearch's go
    first) loads the collection again once the DELETE has committed: 404 on both."""
    service.create_collection("books", BOOK_FIELDS)
    racing = SearchAfterDrop(service.backend, service, "books")
    collections.delete(service.engine, racing, "books")  # type: ignore[arg-type]
    assert racing.racer is not None
    response = racing.racer.finish()
    assert response.status_code == 404, response.text
