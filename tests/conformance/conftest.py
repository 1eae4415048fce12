"""The conformance suite runs every test once per search backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from docuseek.search.base import SearchBackend
from docuseek.search.postgres import PostgresBackend
from tests.conformance.opensearch_target import OpenSearchTarget, opensearch_target


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OpenSearchTarget]:
    with opensearch_target() as target:
        yield target


@pytest.fixture(params=["postgres", "opensearch"])
def backend(request: pytest.FixtureRequest, engine: Engine) -> Iterator[SearchBackend]:
    if request.param == "postgres":
        yield PostgresBackend(engine)
        return
    target: OpenSearchTarget = request.getfixturevalue("opensearch")
    with target.backend() as backend:
        yield backend
