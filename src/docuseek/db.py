"""Database engine: one SQLAlchemy engine per process, psycopg 3 driver."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` spellings and pin the psycopg 3 driver."""
    for prefix in (
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {url.split(':', 1)[0]}://…")


def make_engine(url: str, pool_size: int = 10, application_name: str = "docuseek") -> Engine:
    return create_engine(
        normalize_url(url),
        connect_args={"application_name": application_name},
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
