"""Pick the search backend from the settings."""

from __future__ import annotations

from sqlalchemy import Engine

from docuseek.search.base import SearchBackend
from docuseek.settings import Settings


def make_backend(
    settings: Settings, engine: Engine, read_engine: Engine | None = None
) -> SearchBackend:
    """read_engine: the api's pool of autocommit connections, which PostgreSQL searches
    share (`docuseek.db.make_read_engine`)."""
    if settings.search_backend == "opensearch":
        from docuseek.search.opensearch import OpenSearchBackend

        return OpenSearchBackend.from_settings(settings)
    from docuseek.search.postgres import PostgresBackend

    return PostgresBackend(engine, exact_limit=settings.pg_exact_limit, search_engine=read_engine)
