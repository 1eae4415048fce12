"""A/B of Docuseek's own code: the same database, the api (and worker) started from each
of several source trees in turn, measured side by side in one run.

    python -m bench.ab setup [--scale 1m]         # once: PostgreSQL with the corpus
    python -m bench.ab search --src A/src --src B/src [--classes rare,common] [--rounds 2]
    python -m bench.ab ingest --src A/src --src B/src [--rounds 2]

`search` keeps one database with the corpus indexed, starts only the api from each tree
(PYTHONPATH) and loads it with wrk at the given concurrency; it prints req/s, p50/p99 and
the CPU milliseconds per request of the api and of the whole machine. `ingest` gives each
tree a database of its own (its migrations may differ), and times the corpus end to end
at batch 1000. A tree may carry environment settings: `path/src@NAME=1,OTHER=2`. Rounds
alternate the trees, so drift of a shared machine spreads over all of them; medians are
printed at the end. Nothing is asserted: the figures go into bench/notes.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import corpus, queries, servers
from bench.docuseek_http import DocuseekClient
from bench.loadgen import wrk
from tests.ports import free_port

ADMIN_KEY = "ab-admin-key-" + "k" * 20
COLLECTION = "bench"


def machine_busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def tree(spec: str) -> tuple[str, dict[str, str]]:
    src, _, flags = spec.partition("@")
    return src, dict(f.split("=", 1) for f in flags.split(",") if f)


def base_env(pg: servers.Postgres, database: str) -> dict[str, str]:
    return {
        "DATABASE_URL": pg.sqlalchemy_url(database),
        "SEARCH_BACKEND": "postgres",
        "DOCUSEEK_LOG_LEVEL": "warning",
    }


def load_corpus(scale: str) -> list[dict[str, Any]]:
    """The Debian corpus (64k), or the synthetic one of the latency benchmark (1m)."""
    if scale == "64k":
        return list(corpus.read_ndjson(corpus.ensure_real_corpus(), None))
    from bench import synth

    return list(corpus.read_ndjson(synth.ensure_synth_corpus(1_000_000, 42)))


def setup(work: Path, scale: str) -> None:
    pg = servers.Postgres(work / "pg", fresh=True, tune=True)
    try:
        pg.create_database("docuseek")
        ds = servers.Docuseek(base_env(pg, "docuseek"), work / "logs", ADMIN_KEY)
        client = DocuseekClient(ds.url, ds.admin_key)
        client.create_collection(COLLECTION, index_phrases=True)
        docs = load_corpus(scale)
        print(f"{len(docs)} documents:", client.ingest(COLLECTION, docs, 1000, 4), flush=True)
        ds.stop()
        pg.vacuum_analyze(["docuseek"])
    finally:
        pg.stop()


def start_api(pg: servers.Postgres, src: str, flags: dict[str, str], log: Path) -> tuple[Any, str]:
    port = free_port()
    env = {
        **os.environ,
        **base_env(pg, "docuseek"),
        **flags,
        "PYTHONPATH": src,
        "DOCUSEEK_HOST": "127.0.0.1",
        "DOCUSEEK_PORT": str(port),
        "DOCUSEEK_ADMIN_KEY": ADMIN_KEY,
    }
    api = subprocess.Popen(
        [*servers.docuseek_exe(), "api"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    servers.wait_http(url + "/readyz", 60, api)
    return api, url


def search(work: Path, specs: list[str], classes: list[str], opts: argparse.Namespace) -> None:
    pg = servers.Postgres(work / "pg", fresh=False, tune=False)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    all_queries = queries.load()
    rps: dict[tuple[str, str], list[float]] = {}
    try:
        for round_no in range(opts.rounds):
            for spec in specs:
                src, flags = tree(spec)
                api, url = start_api(pg, src, flags, work / "api.log")
                try:
                    for cls in classes:
                        requests = [
                            ("GET", DocuseekClient.search_path(COLLECTION, q), "")
                            for q in all_queries
                            if q["class"] == cls
                        ]
                        mark: dict[str, float] = {}

                        def settle(pid: int = api.pid, mark: dict[str, float] = mark) -> None:
                            time.sleep(0.5)  # the warm-up's abandoned requests finish
                            mark["api"] = servers.cpu_seconds(pid)
                            mark["all"] = machine_busy_seconds()

                        r = wrk(url, requests, headers, opts.concurrency, opts.duration, 2, settle)
                        n = max(1, r["requests"])
                        api_ms = (servers.cpu_seconds(api.pid) - mark["api"]) / n * 1000
                        all_ms = (machine_busy_seconds() - mark["all"]) / n * 1000
                        rps.setdefault((spec, cls), []).append(r["rps"])
                        print(
                            f"round {round_no} {spec} {cls}: {r['rps']:.1f} req/s,"
                            f" p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms,"
                            f" errors {r['errors']}; CPU per request: api {api_ms:.2f} ms,"
                            f" machine {all_ms:.2f} ms",
                            flush=True,
                        )
                finally:
                    servers.stop_process(api)
    finally:
        pg.stop()
    print("median req/s")
    for cls in classes:
        cells = "  ".join(f"{spec}: {statistics.median(rps[(spec, cls)]):.1f}" for spec in specs)
        print(f"  {cls}: {cells}")


def ingest(work: Path, specs: list[str], opts: argparse.Namespace) -> None:
    pg = servers.Postgres(work / "pg", fresh=False, tune=False)
    docs = list(corpus.read_ndjson(corpus.ensure_real_corpus(), opts.docs or None))
    rates: dict[str, list[float]] = {}
    try:
        for round_no in range(opts.rounds):
            for i, spec in enumerate(specs):
                src, flags = tree(spec)
                database = f"ab_ingest_{i}"
                if round_no == 0:
                    pg.create_database(database)
                env = {**base_env(pg, database), **flags, "PYTHONPATH": src}
                ds = servers.Docuseek(env, work / "logs", ADMIN_KEY)
                try:
                    client = DocuseekClient(ds.url, ds.admin_key)
                    client.create_collection("ingest", index_phrases=True)
                    busy = machine_busy_seconds()
                    r = client.ingest("ingest", docs, 1000, 4)
                    busy = machine_busy_seconds() - busy
                    rates.setdefault(spec, []).append(r["docs_per_s"])
                    print(
                        f"round {round_no} {spec}: {r['docs_per_s']:.0f} docs/s"
                        f" ({r['seconds']:.1f} s), machine CPU {busy:.1f} s",
                        flush=True,
                    )
                    client.client().delete("/collections/ingest")
                finally:
                    ds.stop()
    finally:
        pg.stop()
    print("median docs/s")
    for spec in specs:
        print(f"  {spec}: {statistics.median(rates[spec]):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["setup", "search", "ingest"])
    parser.add_argument("--src", action="append", default=[], help="a source tree (repeat)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/docuseek-ab"))
    parser.add_argument("--classes", default="rare,common,two_words,filter_facets")
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--docs", type=int, default=0, help="ingest: the first N documents")
    parser.add_argument("--scale", choices=["64k", "1m"], default="64k", help="setup's corpus")
    opts = parser.parse_args()
    if opts.command == "setup":
        setup(opts.work_dir, opts.scale)
    elif opts.command == "search":
        search(opts.work_dir, opts.src, opts.classes.split(","), opts)
    else:
        ingest(opts.work_dir, opts.src, opts)


if __name__ == "__main__":
    main()
