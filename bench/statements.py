"""Where a search's time goes in PostgreSQL: every statement a class's searches run, timed.

    python -m bench.statements --work-dir /tmp/docuseek-ab --src src --classes prefix,phrase
    python -m bench.statements ... --per-query      # each search's statements, slowest first

Uses the database of `python -m bench.ab setup` (the same work dir). It turns on
`log_min_duration_statement = 0` for that database, starts the api from the source tree,
runs each query of the classes three times one at a time and reads the server's log
for the third: the parse, bind (planning) and execute times of its statements, and the
statements grouped by their text up to the first parameter. Logging every statement
lengthens the searches, so the wall times are only a frame for the statements' own.
Nothing is asserted: the figures go into bench/notes.md.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from bench import queries, servers
from bench.ab import ADMIN_KEY, COLLECTION, start_api
from bench.docuseek_http import DocuseekClient

# One logged step of a statement: `duration: 0.155 ms  parse <unnamed>: SELECT ...`, the
# text running on over lines that do not start a new log entry (a DETAIL line does).
_STEP = re.compile(
    r"duration: ([\d.]+) ms\s+(parse|bind|execute|statement)[^:]*:\s(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)",
    re.S,
)
KIND_CHARS = 90  # a statement's kind is its text up to here, parameters made alike


@dataclass(frozen=True)
class Step:
    phase: str  # parse, bind (which plans an unnamed statement), execute, or statement
    ms: float
    sql: str  # on one line


def steps(log_text: str) -> list[Step]:
    """The statement steps of a stretch of PostgreSQL's log, in order."""
    return [
        Step(m.group(2), float(m.group(1)), " ".join(m.group(3).split()))
        for m in _STEP.finditer(log_text)
    ]


def kind(sql: str) -> str:
    """A statement's text up to KIND_CHARS, with its parameters' numbers removed, so the
    same statement made for other queries (and other parameter counts) groups together.
    A page statement is told apart by what it wraps: the exact first-page attempt counts
    the matches, a tiered page lists picked ids."""
    text = re.sub(r"\$\d+", "$", sql)[:KIND_CHARS]
    if sql.startswith("SELECT r.*"):
        text += " [attempt]" if " AS capped" in sql else " [picked]" if "unnest(" in sql else ""
    return text


def summary(per_search: list[list[Step]]) -> list[str]:
    """Per search: the time of each phase, and the statement kinds by their execute time."""
    n = max(1, len(per_search))
    phases: dict[str, float] = {}
    kinds: dict[str, float] = {}
    runs: Counter[str] = Counter()
    for search in per_search:
        for step in search:
            phases[step.phase] = phases.get(step.phase, 0.0) + step.ms
            if step.phase in ("execute", "statement"):
                k = kind(step.sql)
                kinds[k] = kinds.get(k, 0.0) + step.ms
                runs[k] += 1
    lines = [f"  {phase:10s} {ms / n:6.2f} ms per search" for phase, ms in phases.items()]
    lines += [
        f"  {ms / n:6.2f} ms per search, {runs[k]:3d} runs  {k}"
        for k, ms in sorted(kinds.items(), key=lambda item: -item[1])
    ]
    return lines


def measure(work: Path, src: str, classes: list[str], per_query: bool) -> None:
    pg = servers.Postgres(work / "pg", fresh=False, tune=False)
    log = pg.server.log
    with psycopg.connect(pg.uri, autocommit=True) as conn:
        conn.execute("ALTER DATABASE docuseek SET log_min_duration_statement = 0")
    try:
        api, url = start_api(pg, src, {}, work / "api.log")
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            client = httpx.Client(base_url=url, headers=headers, timeout=60)
            for cls in classes:
                found: list[tuple[float, str, list[Step]]] = []
                for q in (q for q in queries.load() if q["class"] == cls):
                    path = DocuseekClient.search_path(COLLECTION, q)
                    for _ in range(2):
                        client.get(path)
                    time.sleep(0.05)  # the server's log is written behind the response
                    start = log.stat().st_size
                    began = time.perf_counter()
                    response = client.get(path)
                    wall = (time.perf_counter() - began) * 1000
                    response.raise_for_status()
                    time.sleep(0.15)
                    with log.open() as fh:
                        fh.seek(start)
                        found.append((wall, str(q.get("q")), steps(fh.read())))
                mean = sum(wall for wall, _, _ in found) / max(1, len(found))
                print(f"{cls}: {len(found)} searches, wall {mean:.2f} ms per search", flush=True)
                print("\n".join(summary([s for _, _, s in found])), flush=True)
                if per_query:
                    for wall, text, search in sorted(found, key=lambda f: -f[0]):
                        print(f"  === {wall:6.1f} ms  {text!r}")
                        for step in search:
                            if step.phase in ("execute", "statement"):
                                print(f"      {step.ms:7.2f}  {kind(step.sql)}")
        finally:
            servers.stop_process(api)
    finally:
        with psycopg.connect(pg.uri, autocommit=True) as conn:
            conn.execute("ALTER DATABASE docuseek RESET log_min_duration_statement")
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.statements", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/docuseek-ab"))
    parser.add_argument("--src", default="src", help="the source tree the api runs from")
    parser.add_argument("--classes", default="prefix,phrase,filter_facets")
    parser.add_argument("--per-query", action="store_true", help="each search's statements")
    opts = parser.parse_args()
    measure(opts.work_dir, str(Path(opts.src).resolve()), opts.classes.split(","), opts.per_query)


if __name__ == "__main__":
    main()
