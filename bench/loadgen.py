"""Load generators.

HTTP: wrk (Debian's `wrk`, C, event loop, 2 threads) on loopback, with a Lua script
that rotates through the query set. It is chosen over a Python client because on
a 2-core machine the load generator shares the CPUs with the server: wrk spends a
few microseconds per request where an asyncio/httpx client spends hundreds, so the
numbers measure the server and not the client. When wrk is missing (e.g. the
smoke test), a closed-loop thread driver with httpx is used and the result says so.

In-process engines (raw SQL, SQLite, Tantivy): the same closed-loop thread driver,
one connection/searcher per thread.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROTATE_LUA = Path(__file__).resolve().parent / "rotate.lua"


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return float(sorted_values[k])


def summarize(latencies_s: list[float], seconds: float, errors: int, tool: str) -> dict[str, Any]:
    lat = sorted(latencies_s)
    return {
        "tool": tool,
        "requests": len(lat),
        "errors": errors,
        "seconds": seconds,
        "rps": len(lat) / seconds if seconds > 0 else 0.0,
        "p50_ms": percentile(lat, 50) * 1000,
        "p95_ms": percentile(lat, 95) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else float("nan"),
    }


def closed_loop(
    fn: Callable[[dict[str, Any]], object],
    queries: Sequence[dict[str, Any]],
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
    tool: str = "threads",
) -> dict[str, Any]:
    """`concurrency` threads each call fn(query) back to back for `duration` seconds."""
    stop = threading.Event()
    record = threading.Event()
    lats: list[list[float]] = [[] for _ in range(concurrency)]
    errs = [0] * concurrency

    def work(k: int) -> None:
        i = k * 7
        while not stop.is_set():
            q = queries[i % len(queries)]
            i += 1
            t0 = time.perf_counter()
            try:
                fn(q)
                ok = True
            except Exception:  # noqa: BLE001 - counted as an error
                ok = False
            if record.is_set():
                if ok:
                    lats[k].append(time.perf_counter() - t0)
                else:
                    errs[k] += 1

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    record.set()
    t0 = time.perf_counter()
    time.sleep(duration)
    record.clear()
    dt = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join(60)
    return summarize([x for lst in lats for x in lst], dt, sum(errs), tool)


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    base_url: str,
    requests: Sequence[tuple[str, str, str]],
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    warmup: float = 1.0,
    settle: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Run wrk against base_url rotating through (method, path, body) requests; settle()
    runs between the warm-up and the measurement (e.g. to let the server finish the
    warm-up's requests that wrk abandoned)."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as fh:
        for method, path, body in requests:
            fh.write(f"{method}\t{path}\t{body}\n")
        reqfile = fh.name
    threads = max(1, min(2, concurrency))
    hflags = [x for k, v in headers.items() for x in ("-H", f"{k}: {v}")]

    def run(secs: float) -> dict[str, Any]:
        cmd = [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{secs}s",
            "--timeout",
            "10s",
            *hflags,
            "-s",
            str(ROTATE_LUA),
            base_url,
            "--",
            reqfile,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
        for line in out.stdout.splitlines():
            if line.startswith("WRKJSON "):
                result: dict[str, Any] = json.loads(line[8:])
                return result
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")

    if warmup > 0:
        run(max(1, round(warmup)))
        if settle is not None:
            settle()
    r = run(max(1, round(duration)))
    Path(reqfile).unlink(missing_ok=True)
    secs = r["duration_us"] / 1e6
    if not r["requests"]:
        for k in ("p50_us", "p95_us", "p99_us", "max_us"):
            r[k] = float("nan")
    errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
    return {
        "tool": "wrk",
        "requests": r["requests"],
        "errors": errors,
        "seconds": secs,
        "rps": r["requests"] / secs if secs else 0.0,
        "p50_ms": r["p50_us"] / 1000,
        "p95_ms": r["p95_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
    }


def http_threads(
    base_url: str,
    requests: Sequence[tuple[str, str, str]],
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    warmup: float = 0.5,
) -> dict[str, Any]:
    """Fallback HTTP driver: closed-loop threads with one keep-alive httpx client each."""
    import httpx

    local = threading.local()

    def fn(req: dict[str, Any]) -> None:
        c = getattr(local, "c", None)
        if c is None:
            c = local.c = httpx.Client(base_url=base_url, headers=headers, timeout=30)
        method, path, body = req["r"]
        r = c.request(
            method,
            path,
            content=body or None,
            headers={"Content-Type": "application/json"} if body else None,
        )
        if r.status_code >= 400:
            raise RuntimeError(r.status_code)

    return closed_loop(
        fn, [{"r": r} for r in requests], concurrency, duration, warmup, tool="httpx-threads"
    )


def http_load(
    base_url: str,
    requests: Sequence[tuple[str, str, str]],
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    use_wrk: bool | None = None,
    settle: Callable[[], object] | None = None,
) -> dict[str, Any]:
    if use_wrk is None:
        use_wrk = have_wrk()
    if use_wrk:
        return wrk(base_url, requests, headers, concurrency, duration, settle=settle)
    return http_threads(base_url, requests, headers, concurrency, duration)
