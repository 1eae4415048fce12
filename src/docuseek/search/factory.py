"""Pick the search backend from the settings."""

from __future__ import annotations

from sqlalchemy import Engine

from docuseek.search.base import SearchBackend
from docuseek.settings import Settings


def make_backend(settings: Settings, engine: Engine) -> SearchBackend:
    if settings.search_backend == "opensearch":
        from docuseek.search.opensearch import OpenSearchBackend

        return OpenSearchBackend.from_settings(settings)
    from docuseek.search.postgres import PostgresBackend

    return PostgresBackend(engine, exact_limit=settings.pg_exact_limit)
