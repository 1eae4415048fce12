"""Alembic environment: the URL comes from the caller (docuseek migrate), never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from docuseek.db import normalize_url

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("docuseek migrate: no database URL given")

connectable = config.attributes.get("connection")
if connectable is None:
    engine = create_engine(normalize_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connectable, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
