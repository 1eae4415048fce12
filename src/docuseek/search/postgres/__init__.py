"""PostgreSQL full-text search backend (the embedded default): see `backend.py`."""

from docuseek.search.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
