"""Embedded mode's PostgreSQL: started from the wheel, tuned once for search."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text

from docuseek.db import normalize_url
from docuseek.embedded import _tune, start_postgres, tuning
from tests.helpers import DOCUSEEK_BIN, free_port, wait_for


def test_embedded_postgres_is_tuned_and_restarts_only_once() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="dsemb-"))  # short: unix socket path limit
    wanted = tuning()
    for _ in range(2):
        server, url = start_postgres(data_dir)
        engine = create_engine(normalize_url(url))
        try:
            with engine.connect() as conn:
                for name, value in wanted.items():
                    same = conn.execute(
                        text("SELECT pg_size_bytes(current_setting(:n)) = pg_size_bytes(:v)"),
                        {"n": name, "v": value},
                    ).scalar_one()
                    assert same, name
            # In place and recognised as such: a later start will not restart the server.
            assert _tune(server) is False
        finally:
            engine.dispose()
            server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


class Serve:
    """`docuseek serve` on an embedded PostgreSQL in its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DOCUSEEK_ADMIN_KEY")
        }
        env.update(
            DOCUSEEK_DATA_DIR=str(data_dir),
            DOCUSEEK_PORT=str(self.port),
            WORKER_METRICS_PORT="0",
            SEARCH_BACKEND="postgres",
        )
        # A file, not a pipe nobody reads: serve must never block on its output.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [DOCUSEEK_BIN, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_for(self._ready, 90, "docuseek serve")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def stop(self, sig: int) -> None:
        """A clean shutdown: 0, or the signal's exit status that serve re-raises."""
        self.proc.send_signal(sig)
        assert self.proc.wait(timeout=60) in (0, 128 + sig), self.output()

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited: {self.output()}")
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster named in pgdata's postmaster.pid, with its children."""
    pid_file = pgdata / "postmaster.pid"
    pid = int(pid_file.read_text().split("\n", 1)[0])
    postmaster = psutil.Process(pid)
    assert postmaster.name() == "postgres"
    return [postmaster, *postmaster.children(recursive=True)]


def gone(processes: list[psutil.Process]) -> bool:
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def clean_up(serves: list[Serve], data_dir: Path) -> None:
    """Whatever a failed test left running: its serve processes, their PostgreSQL."""
    for serve in serves:
        if serve.proc.poll() is None:
            serve.proc.kill()
    pgdata = data_dir / "postgres"
    if (pgdata / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            for process in server_processes(pgdata):
                process.kill()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.timeout(300)
def test_serve_recovers_from_kill_9_and_stops_the_server_it_owns() -> None:
    """kill -9 of `serve` leaves its PostgreSQL running and its pid in the embedded
    package's list of users: the next start adopts the server, and its clean shutdown
    still stops it. Then the harsher case: the postmaster killed as well, and its pid
    (in postmaster.pid) since given to another process."""
    data_dir = Path(tempfile.mkdtemp(prefix="dskill-"))
    pgdata = data_dir / "postgres"
    try:
        first = Serve(data_dir)
        orphans = server_processes(pgdata)
        first.proc.kill()
        first.proc.wait(timeout=30)
        assert not gone(orphans)  # left running, as a real crash leaves it
        dead_pid = first.proc.pid
        assert dead_pid in json.loads((pgdata / ".handle_pids.json").read_text())

        second = Serve(data_dir)
        adopted = server_processes(pgdata)
        assert adopted[0].pid == orphans[0].pid  # the same server, adopted
        second.stop(signal.SIGTERM)
        wait_for(lambda: gone(adopted), 30, "the adopted PostgreSQL to stop")
        assert not (pgdata / "postmaster.pid").exists()

        third = Serve(data_dir)
        running = server_processes(pgdata)
        third.proc.kill()
        third.proc.wait(timeout=30)
        for process in running:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        wait_for(lambda: gone(running), 30, "the killed PostgreSQL to go")
        # The dead postmaster's pid now belongs to someone else (this test process).
        stale = (pgdata / "postmaster.pid").read_text().split("\n")
        (pgdata / "postmaster.pid").write_text("\n".join([str(os.getpid()), *stale[1:]]))

        fourth = Serve(data_dir)
        restarted = server_processes(pgdata)
        assert restarted[0].pid != running[0].pid
        fourth.stop(signal.SIGINT)
        wait_for(lambda: gone(restarted), 30, "PostgreSQL to stop")
        assert not (pgdata / "postmaster.pid").exists()
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    finally:
        clean_up([s for s in locals().values() if isinstance(s, Serve)], data_dir)


@pytest.mark.timeout(300)
def test_maintenance_commands_use_the_embedded_postgres_without_database_url() -> None:
    """reconcile, files gc and reindex --local on the data directory `docuseek serve`
    made: with serve running they join its PostgreSQL; with it stopped they start it and
    stop it again. Without this they said only 'DATABASE_URL is not set'."""
    data_dir = Path(tempfile.mkdtemp(prefix="dsmaint-"))
    pgdata = data_dir / "postgres"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DOCUSEEK_ADMIN_KEY")}
    env.update(DOCUSEEK_DATA_DIR=str(data_dir), SEARCH_BACKEND="postgres", COLUMNS="200")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOCUSEEK_BIN, *args], env=env, capture_output=True, text=True, timeout=120
        )

    try:
        serve = Serve(data_dir)
        key = (data_dir / "admin.key").read_text().strip()
        request = urllib.request.Request(
            f"http://127.0.0.1:{serve.port}/collections/notes",
            data=json.dumps({"fields": {"title": {"type": "text"}}}).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        running = server_processes(pgdata)
        checked = run("reconcile", "--collection", "notes")
        assert checked.returncode == 0, checked.stderr
        assert "drift 0" in checked.stderr and "embedded PostgreSQL" in checked.stderr
        assert server_processes(pgdata)[0].pid == running[0].pid  # joined, left running
        serve.stop(signal.SIGTERM)
        wait_for(lambda: gone(running), 30, "serve's PostgreSQL to stop")

        collected = run("files", "gc")
        assert collected.returncode == 0, collected.stderr
        assert "deleted 0 original(s)" in collected.stderr
        rebuilt = run("reindex", "--local", "--collection", "notes")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "notes: generation 2 live" in rebuilt.stderr
        assert not (pgdata / "postmaster.pid").exists()  # started for each, then stopped
    finally:
        clean_up([s for s in locals().values() if isinstance(s, Serve)], data_dir)
