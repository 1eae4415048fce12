"""One benchmark run: one backend, one corpus size, everything side by side.

Order (all in one run, so the engines share the machine's state):
1. corpus (real Debian records, or the synthetic N-document corpus);
2. ingest at batch sizes 1, 100, 1000, alternating raw engine and Docuseek;
   then VACUUM (ANALYZE) of both PostgreSQL databases and a CHECKPOINT, so that no
   search window shares the cores with autovacuum working through the fresh tables or
   the checkpointer writing them out;
3. index size on disk; hit-set agreement between Docuseek and the raw engine;
4. the peers (SQLite FTS5, Tantivy) load the same documents;
5. search latency per query class x concurrency for Docuseek (HTTP), the raw
   engine, and the peers;
6. indexing lag under a steady write load;
7. peak RSS of api, worker and the engines.

One engine at a time (`--one-engine-at-a-time`; on by itself for OpenSearch at
BIG_DOCS documents or more, where osmem-server cannot hold two copies of the corpus in
memory): after the raw engine's batch-1000 load, its agreement answers and all its
search windows are taken and its index is deleted; only then does Docuseek load. The raw
and Docuseek windows are then minutes apart, not interleaved.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import corpus, loadgen, machine, queries, servers
from bench.docuseek_http import DocuseekClient
from bench.parallel import scalar
from bench.peers import SqliteFts, TantivyIndex
from bench.raw_opensearch import RawOpenSearch
from bench.raw_postgres import RawPostgres

REPO = Path(__file__).resolve().parent.parent
Raw = RawOpenSearch | RawPostgres
T = TypeVar("T")
SCALES = {"64k": None, "1m": 1_000_000, "10m": 10_000_000}
BIG_DOCS = 500_000  # OpenSearch at this size and above: one engine at a time, GOGC below
BIG_OSMEM_GOGC = 25  # osmem-server's GOGC at BIG_DOCS+ unless --osmem-gogc says otherwise
OSMEM_IDLE_TIMEOUT_S = 180.0  # longest wait for osmem-server to finish abandoned searches
ONE_AT_A_TIME_NOTE = (
    "one engine at a time: the raw engine's agreement answers and search windows were taken "
    "right after its batch-1000 load, then its index was deleted and osmem-server restarted "
    "before Docuseek loaded; the raw and Docuseek latency windows are minutes apart "
    "(search_timing), not interleaved"
)


@dataclass
class Options:
    backend: str = "postgres"  # postgres | opensearch
    scale: str = "64k"  # 64k | 1m | 10m | smoke
    docs: int | None = None  # explicit document count (first N of the real corpus or synth)
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32])
    duration: float = 4.0  # seconds per search measurement (after a warm-up)
    warmup: float = 1.0
    batch1_docs: int = 2000
    batch100_docs: int = 20000
    ingest_concurrency: int = 2
    lag_seconds: float = 15.0
    lag_rate: float = 200.0  # documents per second
    lag_batch: int = 10
    peers: bool = True
    use_wrk: bool | None = None
    seed: int = 42
    work_dir: Path = corpus.DATA_DIR / "run"
    out_dir: Path = REPO / "bench" / "results"
    label: str = ""
    api_workers: int = 1  # uvicorn processes of `docuseek api`
    workers: int = 1  # `docuseek worker` processes
    # statement_timeout (s) for the api's connections and the raw search connections; 0 = none
    statement_timeout: float = 10.0
    tune_postgres: bool = True  # docuseek.embedded.tuning() on the shared server
    exact_limit: int = 1000  # Docuseek's PG_EXACT_LIMIT (default; the harness does not set it)
    classes: list[str] = field(default_factory=lambda: list(queries.CLASSES))
    # None: on for OpenSearch at BIG_DOCS documents or more (see the module docstring)
    one_engine_at_a_time: bool | None = None
    osmem_gogc: int | None = None  # None: Go's default, BIG_OSMEM_GOGC at BIG_DOCS+
    osmem_gomemlimit: str = ""  # e.g. "14GiB"; "" = no soft limit
    # PostgreSQL: collections with index_phrases (Docuseek's default), the raw table with the
    # same pairs in its GIN index; False: both without.
    index_phrases: bool = True
    # Batch-1000 loads of each side, alternated (raw, then Docuseek, per round); the ratio
    # is the median of the rounds'. None: ROUNDS_SMALL below BIG_DOCS documents, else 1.
    ingest_rounds: int | None = None


ROUNDS_SMALL = 3  # one 64k round: ~6 s raw, ~9 s Docuseek; the ratio swung 0.58-0.73 alone


def ingest_rounds(opts: Options, n_docs: int) -> int:
    if opts.ingest_rounds is not None:
        return max(1, opts.ingest_rounds)
    return ROUNDS_SMALL if n_docs < BIG_DOCS else 1


def one_at_a_time(opts: Options, n_docs: int) -> bool:
    if opts.one_engine_at_a_time is None:
        return opts.backend == "opensearch" and n_docs >= BIG_DOCS
    if opts.one_engine_at_a_time and opts.backend != "opensearch":
        raise ValueError("one engine at a time is for the opensearch backend (in-memory server)")
    return opts.one_engine_at_a_time


def osmem_go_env(opts: Options, n_docs: int) -> dict[str, str]:
    """GOGC / GOMEMLIMIT for osmem-server's process (empty: Go's defaults)."""
    gogc = opts.osmem_gogc
    if gogc is None and n_docs >= BIG_DOCS:
        gogc = BIG_OSMEM_GOGC
    env = {"GOGC": str(gogc)} if gogc is not None else {}
    if opts.osmem_gomemlimit:
        env["GOMEMLIMIT"] = opts.osmem_gomemlimit
    return env


def load_docs(opts: Options) -> tuple[list[dict[str, Any]], str]:
    if opts.scale in ("64k", "smoke") and (opts.docs is None or opts.docs <= 70_000):
        path = corpus.ensure_real_corpus()
        docs = list(corpus.read_ndjson(path, opts.docs))
        return docs, f"debian ({path.name})"
    from bench import synth  # numpy: only needed for the synthetic corpora

    n = opts.docs or SCALES[opts.scale]
    assert n is not None
    path = synth.ensure_synth_corpus(n, opts.seed)
    return list(corpus.read_ndjson(path)), f"synthetic ({path.name}, seed {opts.seed})"


class Run:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.errors: list[str] = []
        self.t_start = time.perf_counter()
        self.result: dict[str, Any] = {}
        self.log_lines: list[str] = []
        self.pg: servers.Postgres | None = None
        self.osm: servers.Osmem | None = None
        self.ds: servers.Docuseek | None = None
        self.one_at_a_time = False
        # One engine at a time: taken before the raw index is deleted (None: measured live).
        self.raw_dropped = False
        self.raw_answers: list[dict[str, Any]] | None = None
        self.raw_windows: dict[str, dict[str, dict[str, Any]]] | None = None
        self.raw_size: int | dict[str, Any] | None = None

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.t_start, 1)

    def log(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.t_start:7.1f}s] {msg}"
        print(line, flush=True)

    def section(self, name: str, fn: Callable[[], T]) -> T | None:
        self.log(f"-- {name}")
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            self.log(f"!! {name} failed: {exc}\n{traceback.format_exc()}")
            return None

    # -----------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Start the servers, measure every section, stop the servers; the result."""
        o = self.o
        docs, source = load_docs(o)
        qs = [q for q in queries.load() if q["class"] in o.classes]
        self.log(f"{len(docs)} documents from {source}; {len(qs)} queries; backend {o.backend}")
        o.work_dir.mkdir(parents=True, exist_ok=True)
        self.one_at_a_time = one_at_a_time(o, len(docs))
        go_env = osmem_go_env(o, len(docs)) if o.backend == "opensearch" else {}
        self.pg = servers.Postgres(o.work_dir / "pg", tune=o.tune_postgres)
        res = self.result = self.new_result(len(docs), source, go_env)
        try:
            raw, client = self.start_servers(go_env)
            self.measure(docs, qs, raw, client)
        finally:
            self.stop_servers()
        res["targets"] = targets(res)
        res["errors"] = self.errors
        res["meta"]["wall_seconds"] = time.perf_counter() - self.t_start
        return res

    def new_result(self, n_docs: int, source: str, go_env: dict[str, str]) -> dict[str, Any]:
        """The result's skeleton: what ran, where and how; the sections fill in the rest."""
        o = self.o
        res: dict[str, Any] = {
            "meta": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "backend": o.backend,
                "scale": o.scale,
                "docs": n_docs,
                "source": source,
                "machine": machine.describe(),
                "git_commit": machine.git_commit(REPO),
                "label": o.label,
                "options": {
                    "concurrency": o.concurrency,
                    "duration_s": o.duration,
                    "warmup_s": o.warmup,
                    "batch1_docs": o.batch1_docs,
                    "batch100_docs": o.batch100_docs,
                    "ingest_concurrency": o.ingest_concurrency,
                    "lag_rate_docs_s": o.lag_rate,
                    "lag_batch": o.lag_batch,
                    "lag_seconds": o.lag_seconds,
                    "seed": o.seed,
                    "api_workers": o.api_workers,
                    "workers": o.workers,
                    "statement_timeout_s": o.statement_timeout,
                    "index_phrases": o.index_phrases,
                    "one_engine_at_a_time": self.one_at_a_time,
                    "osmem_go_env": go_env,
                },
            },
            "ingest": {},
            "lag": {},
            "search": {},
            "memory": {},
            "index_size": {},
            "agreement": {},
            "peers_ingest": {},
        }
        if self.one_at_a_time:
            res["meta"]["order_note"] = ONE_AT_A_TIME_NOTE
        return res

    def start_servers(self, go_env: dict[str, str]) -> tuple[Raw, DocuseekClient]:
        """The two databases, osmem-server for the OpenSearch backend, the raw baseline and
        Docuseek's api and worker processes."""
        o, pg, res = self.o, self.pg, self.result
        assert pg is not None
        pg.create_database("docuseek")
        pg.create_database("raw")
        res["meta"]["postgres"] = {
            **pg.settings(),
            "tuned": "docuseek.embedded.tuning()" if o.tune_postgres else "defaults",
        }
        env = {
            "DATABASE_URL": pg.sqlalchemy_url("docuseek"),
            "SEARCH_BACKEND": o.backend,
            "DOCUSEEK_LOG_LEVEL": "warning",
        }
        raw: Raw
        if o.backend == "opensearch":
            osm = self.osm = servers.Osmem(o.work_dir / "osmem.log", go_env)
            env["OPENSEARCH_URL"] = osm.url
            raw = RawOpenSearch(osm.url)
        else:
            raw = RawPostgres(
                pg.uri_for("raw"),
                statement_timeout_s=o.statement_timeout,
                index_phrases=o.index_phrases,
            )
        pgoptions = (
            f"-c statement_timeout={int(o.statement_timeout * 1000)}" if o.statement_timeout else ""
        )
        admin_key = "bench-" + secrets.token_hex(16)
        self.ds = servers.Docuseek(
            env, o.work_dir / "logs", admin_key, o.api_workers, o.workers, api_pgoptions=pgoptions
        )
        res["meta"]["load_generator"] = (
            "wrk"
            if (o.use_wrk if o.use_wrk is not None else loadgen.have_wrk())
            else "httpx-threads"
        )
        return raw, DocuseekClient(self.ds.url, admin_key)

    def measure(
        self, docs: list[dict[str, Any]], qs: list[dict[str, Any]], raw: Raw, client: DocuseekClient
    ) -> None:
        """Every section in turn (a failed one is recorded and the run goes on), then the
        processes' peak memory."""
        o, pg, ds, res = self.o, self.pg, self.ds, self.result
        assert pg is not None and ds is not None
        self.section("ingest", lambda: self.ingest(docs, qs, raw, client))
        ds.check_alive()
        self.section("vacuum", lambda: self.vacuum(pg, raw))
        self.section("index size", lambda: self.index_size(pg, raw))
        self.section("agreement", lambda: self.agreement(qs, raw, client))
        peers = self.section("peers", lambda: self.load_peers(docs)) if o.peers else None
        self.section("search", lambda: self.search(qs, raw, client, ds, peers or []))
        self.section("lag", lambda: self.lag(docs, client))
        ds.check_alive()
        res["memory"].update(
            {f"{k}_peak_rss_bytes": v for k, v in ds.peak_rss().items()},
            postgres_peak_rss_bytes=pg.peak_rss(),
        )
        if self.osm is not None:
            res["memory"]["osmem_peak_rss_bytes"] = self.osm.peak_rss()
            self.note_osmem_rss("end")
        for p in peers or []:
            if hasattr(p, "close"):
                p.close()

    def stop_servers(self) -> None:
        if self.ds is not None:
            self.ds.stop()
        if self.osm is not None:
            self.osm.stop()
        if self.pg is not None:
            self.pg.stop()

    # -- sections ---------------------------------------------------------------------------

    def ingest(
        self, docs: list[dict[str, Any]], qs: list[dict[str, Any]], raw: Raw, client: DocuseekClient
    ) -> None:
        """Each batch size: the raw load, then Docuseek's; batch 1000 in `ingest_rounds`
        alternated rounds (the last one's loads stay for the searches). One engine at a
        time, the raw engine is measured and its index deleted between the two batch-1000
        loads."""
        o = self.o
        out: dict[str, Any] = {"docuseek": {}, "raw": {}, "ratio": {}, "rounds": {}}
        self.result["ingest"] = out
        rounds = ingest_rounds(o, len(docs))
        plan = [(1, docs[: o.batch1_docs], 1), (100, docs[: o.batch100_docs], 1)]
        plan += [(1000, docs, rounds)]
        for batch, subset, n_rounds in plan:
            per_round: dict[str, list[Any]] = {"raw": [], "docuseek": [], "ratio": []}
            for i in range(n_rounds):
                last = i == n_rounds - 1
                raw.reset()
                r = raw.ingest(subset, batch, o.ingest_concurrency)
                per_round["raw"].append(r)
                self.log(f"raw b{batch}: {r['docs_per_s']:.0f} docs/s ({len(subset)} docs)")
                if batch == 1000 and last:
                    out["raw_count"] = raw.count()
                    if self.one_at_a_time and isinstance(raw, RawOpenSearch):
                        self.section("raw engine alone", lambda: self.raw_alone(qs, raw))
                name = "bench" if batch == 1000 and last else f"bench_b{batch}_{i}"
                client.create_collection(name, index_phrases=o.index_phrases)
                d = client.ingest(name, subset, batch, o.ingest_concurrency)
                per_round["docuseek"].append(d)
                per_round["ratio"].append(d["docs_per_s"] / r["docs_per_s"])
                self.log(
                    f"docuseek b{batch}: {d['docs_per_s']:.0f} docs/s "
                    f"(accept {d['accept_docs_per_s']:.0f}/s), ratio {per_round['ratio'][-1]:.2f}"
                )
                if name != "bench":
                    client.client().delete(f"/collections/{name}")
            out["raw"][str(batch)] = median_round(per_round["raw"])
            out["docuseek"][str(batch)] = median_round(per_round["docuseek"])
            out["ratio"][str(batch)] = statistics.median(per_round["ratio"])
            if n_rounds > 1:
                out["rounds"][str(batch)] = {
                    "raw_docs_per_s": [x["docs_per_s"] for x in per_round["raw"]],
                    "docuseek_docs_per_s": [x["docs_per_s"] for x in per_round["docuseek"]],
                    "ratio": per_round["ratio"],
                }
                self.log(
                    f"b{batch} over {n_rounds} rounds: ratio median {out['ratio'][str(batch)]:.2f}"
                    f" ({', '.join(f'{x:.2f}' for x in per_round['ratio'])})"
                )
        self.note_osmem_rss("docuseek b1000 loaded")
        out["docuseek_count"] = client.count("bench")

    def raw_alone(self, qs: list[dict[str, Any]], raw: RawOpenSearch) -> None:
        """One engine at a time: everything the run needs from the raw engine (index size,
        agreement answers, search windows), then its index is deleted, whatever failed."""
        try:
            self.note_osmem_rss("raw b1000 loaded")
            self.raw_size = raw.size_bytes()
            self.raw_answers = [raw.search(q) for q in qs]
            self.raw_windows = self.raw_search(qs, raw)
            self.note_osmem_rss("raw searched")
        finally:
            raw.drop()
            self.raw_dropped = True
            self.wait_osmem_idle("raw index deleted")
            self.note_osmem_rss("raw index deleted")
            if self.osm is not None:
                # Docuseek's load gets a fresh server too, not one whose heap the raw
                # searches grew (bench/notes.md, "Later on 2026-11-26 (02:35–04:45 UTC)").
                self.osm.restart()
                self.note_osmem_rss("osmem-server restarted")

    def raw_search(
        self, qs: list[dict[str, Any]], raw: Raw
    ) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        t0 = self.elapsed()
        for cls, lst, c in self.windows(qs):
            r = out.setdefault(cls, {})[str(c)] = self.raw_window(raw, cls, lst, c)
            self.log(
                f"{cls:13s} c={c:<3d} raw p50 {r['p50_ms']:7.1f} p99 {r['p99_ms']:7.1f} "
                f"({r['rps']:6.0f}/s, {r['requests']} requests, {r['errors']} err)"
            )
        self.result["search_timing"] = {"raw_windows_s": [t0, self.elapsed()]}
        return out

    def note_osmem_rss(self, when: str) -> None:
        """osmem-server's current RSS at a step of the run (memory.osmem_rss_bytes_at)."""
        if self.osm is None:
            return
        rss, peak = self.osm.rss(), self.osm.peak_rss()
        at = self.result.setdefault("memory", {}).setdefault("osmem_rss_bytes_at", {})
        at[when] = {"rss": rss, "peak_so_far": peak}
        self.log(f"osmem-server RSS {rss / 2**20:,.0f} MB, peak {peak / 2**20:,.0f} MB ({when})")

    def index_size(self, pg: servers.Postgres, raw: Raw) -> None:
        import psycopg

        sizes: dict[str, Any] = {}
        with psycopg.connect(pg.uri_for("docuseek")) as c:
            rows = c.execute(
                "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
            sizes["docuseek_tables"] = {name: int(sz) for name, sz in rows}
            sizes["docuseek_database_bytes"] = int(
                scalar(c.execute("SELECT pg_database_size(current_database())").fetchone())
            )
            sizes["docuseek_index_bytes"] = sum(
                sz for name, sz in rows if name.startswith("docuseek_index.")
            )
        raw_size = self.raw_size if self.raw_dropped else raw.size_bytes()
        sizes["raw_bytes"] = raw_size["total"] if isinstance(raw_size, dict) else raw_size
        if self.osm is not None:
            sizes["note"] = "osmem-server keeps its indices in memory: see memory.osmem_peak_rss"
        self.result["index_size"] = sizes

    def agreement(self, qs: list[dict[str, Any]], raw: Raw, client: DocuseekClient) -> None:
        """Like with like: the raw SQL does exact work (exact total, ts_rank over every
        match). Docuseek's PostgreSQL backend does too up to PG_EXACT_LIMIT matches; beyond,
        its page is tiered (top-weight matches first, id order) by design, and its total is
        capped (`total_relation: gte`) unless facets were asked (then the total is exact but
        the page is still tiered). So top-10 membership and totals are compared only where
        Docuseek ranked exactly; tiered queries are counted and checked for soundness (total
        equal, or a lower bound when `gte`; every returned id a real match)."""
        out = []
        tiering = self.o.backend == "postgres"
        # One engine at a time the raw index is gone: its answers were stored before.
        answers = self.raw_answers if self.raw_dropped else [raw.search(q) for q in qs]
        if answers is None:
            raise RuntimeError("the raw index was deleted before its answers were stored")
        for q, b in zip(qs, answers, strict=True):
            if "intended" in q:  # a typo or a cut word: no raw engine answers it alike
                continue
            a = client.search("bench", q)
            row = agreement_row(q, a, b, self.o.exact_limit if tiering else None)
            if row["tiered"] and not self.raw_dropped and hasattr(raw, "members"):
                row["ids_matching"] = raw.members(q, a["ids"])
                if row["ids_matching"] < len(a["ids"]) and hasattr(raw, "members_by_parts"):
                    row["ids_matching_by_parts"] = raw.members_by_parts(q, a["ids"])
            out.append(row)
        ag = summarize_agreement(out)
        self.result["agreement"] = ag
        self.log(
            f"agreement ({ag['compared']} ranked exactly, {ag['tiered']} tiered): same total "
            f"{ag['same_total_fraction']:.2f}, top-10 jaccard {ag['mean_top10_jaccard']:.2f}"
        )

    def load_peers(self, docs: list[dict[str, Any]]) -> list[SqliteFts | TantivyIndex]:
        work = self.o.work_dir
        peers: list[SqliteFts | TantivyIndex] = [
            SqliteFts(work / "peers.sqlite"),
            TantivyIndex(work / "tantivy"),
        ]
        for p in peers:
            r = p.ingest(docs, 1000)
            r["size_bytes"] = p.size_bytes()
            self.result["peers_ingest"][p.name] = r
            self.result["index_size"][p.name + "_bytes"] = r["size_bytes"]
            self.log(f"{p.name}: {r['docs_per_s']:.0f} docs/s, {r['size_bytes'] / 1e6:.0f} MB")
        return peers

    def windows(self, qs: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]], int]]:
        """The search measurements, in order: (class, its queries, concurrency)."""
        return [
            (cls, lst, c)
            for cls, lst in queries.by_class(qs).items()
            if lst
            for c in self.o.concurrency
        ]

    def raw_window(self, raw: Raw, cls: str, lst: list[dict[str, Any]], c: int) -> dict[str, Any]:
        o = self.o
        self.quiesce(f"{cls} c={c} raw")
        # The raw engines have no typo tolerance or prefixes: they run the query meant.
        lst = [{**q, "q": q.get("intended", q["q"])} for q in lst]
        if isinstance(raw, RawOpenSearch):
            reqs = [raw.request_line(q) for q in lst]
            return loadgen.http_load(
                raw.url, reqs, {}, c, o.duration, o.use_wrk, settle=self.settle(f"{cls} c={c} raw")
            )
        return loadgen.closed_loop(raw.search, lst, c, o.duration, o.warmup, tool="threads+psycopg")

    def stored_raw_window(self, cls: str, c: int) -> dict[str, Any]:
        if self.raw_windows is None:
            raise RuntimeError("the raw index was deleted before its search windows were taken")
        return self.raw_windows[cls][str(c)]

    def search(
        self,
        qs: list[dict[str, Any]],
        raw: Raw,
        client: DocuseekClient,
        ds: servers.Docuseek,
        peers: list[Any],
    ) -> None:
        o = self.o
        out: dict[str, Any] = {"docuseek": {}, "raw": {}, "overhead_p99": {}, "overhead_p50": {}}
        out.update({p.name: {} for p in peers})
        self.result["search"] = out
        t0 = self.elapsed()
        for cls, lst, c in self.windows(qs):
            ds_reqs = [("GET", client.search_path("bench", q), "") for q in lst]
            what = f"{cls} c={c} docuseek"
            self.quiesce(what)
            d = loadgen.http_load(
                ds.url, ds_reqs, client.headers, c, o.duration, o.use_wrk, settle=self.settle(what)
            )
            if self.raw_dropped:
                r = self.stored_raw_window(cls, c)
            else:
                r = self.raw_window(raw, cls, lst, c)
            per_c: dict[str, dict[str, Any] | float] = {"docuseek": d, "raw": r}
            per_c["overhead_p99"] = d["p99_ms"] / r["p99_ms"]
            per_c["overhead_p50"] = d["p50_ms"] / r["p50_ms"]
            line = (
                f"{cls:13s} c={c:<3d} docuseek p50 {d['p50_ms']:7.1f} p99 "
                f"{d['p99_ms']:7.1f} ({d['rps']:6.0f}/s, {d['errors']} err) | raw p50 "
                f"{r['p50_ms']:7.1f} p99 {r['p99_ms']:7.1f} ({r['rps']:6.0f}/s)"
            )
            for p in peers:
                window = loadgen.closed_loop(p.search, lst, c, o.duration, o.warmup, tool="threads")
                per_c[p.name] = window
                line += f" | {p.name} p99 {window['p99_ms']:.1f}"
            for key, m in per_c.items():
                out[key].setdefault(cls, {})[str(c)] = m
            self.log(line)
        self.result.setdefault("search_timing", {})["docuseek_windows_s"] = [t0, self.elapsed()]

    def vacuum(self, pg: servers.Postgres, raw: Raw) -> None:
        """VACUUM (ANALYZE) both sides' databases once the loads are done (the raw one
        only when it holds the raw table), and a CHECKPOINT, so no search window shares
        the cores with autovacuum's work on the fresh tables or the checkpointer's."""
        names = ["docuseek"] + (["raw"] if isinstance(raw, RawPostgres) else [])
        seconds = pg.vacuum_analyze(names)
        self.result["vacuum_s"] = round(seconds, 1)
        self.log(f"VACUUM (ANALYZE) {', '.join(names)} and CHECKPOINT: {seconds:.1f} s")

    def quiesce(self, what: str) -> None:
        """Before a measurement: wait until PostgreSQL runs no statement left over from the
        previous one (up to the statement timeout) and osmem-server has finished the
        searches whose clients gave up (it does not cancel them)."""
        waited = self.wait_osmem_idle(what)
        if self.pg is not None:
            waited += self.pg.wait_idle((self.o.statement_timeout or 10.0) + 2.0)
        self.note_wait(what, waited)

    def settle(self, what: str) -> Callable[[], object] | None:
        """Between wrk's warm-up and its measurement: osmem-server finishes the warm-up's
        abandoned searches first (they would run on inside the window)."""
        if self.osm is None:
            return None
        return lambda: self.note_wait(f"{what} after warm-up", self.wait_osmem_idle(what))

    def note_wait(self, what: str, waited: float) -> None:
        self.result.setdefault("quiesce_s", {})[what] = round(waited, 2)
        if waited > 0.5:
            self.log(f"waited {waited:.1f} s for leftover work before {what}")

    def wait_osmem_idle(self, what: str) -> float:
        if self.osm is None:
            return 0.0
        waited = self.osm.wait_idle(OSMEM_IDLE_TIMEOUT_S)
        if waited >= OSMEM_IDLE_TIMEOUT_S:
            self.log(f"osmem-server still busy after {waited:.0f} s before {what}")
        return waited

    def lag(self, docs: list[dict[str, Any]], client: DocuseekClient) -> None:
        o = self.o
        self.quiesce("lag")  # the last search window's abandoned requests run on otherwise
        r = client.lag("bench", docs, o.lag_rate, o.lag_batch, o.lag_seconds)
        self.result["lag"] = {"docuseek": r}
        self.log(
            f"lag: p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms "
            f"({r['measured']}/{r['writes']} writes, {r['errors']} errors)"
        )


def median_round(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median docs/s (the lower middle one of an even count), so the
    figures reported beside it belong to one real load."""
    ordered = sorted(results, key=lambda x: x["docs_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def agreement_row(
    q: dict[str, Any], a: dict[str, Any], b: dict[str, Any], exact_limit: int | None
) -> dict[str, Any]:
    """One query's comparison; exact_limit None = the backend never tiers (OpenSearch)."""
    sa, sb = set(a["ids"]), set(b["ids"])
    rel = a.get("total_relation", "eq")
    tiered = rel != "eq" or (exact_limit is not None and a["total"] > exact_limit)
    return {
        "class": q["class"],
        "q": q["q"],
        "total_relation": rel,
        "tiered": tiered,
        "docuseek_total": a["total"],
        "raw_total": b["total"],
        "docuseek_ids": a["ids"],
        "raw_ids": b["ids"],
        "jaccard": (len(sa & sb) / len(sa | sb)) if (sa | sb) else 1.0,
    }


def summarize_agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    exact = [x for x in rows if not x["tiered"]]
    tiered = [x for x in rows if x["tiered"]]
    n = len(exact) or 1
    ag: dict[str, Any] = {
        "queries": rows,
        "compared": len(exact),
        "tiered": len(tiered),
        "tiered_by_class": {
            c: sum(x["class"] == c for x in tiered) for c in dict.fromkeys(x["class"] for x in rows)
        },
        "same_total_fraction": sum(x["docuseek_total"] == x["raw_total"] for x in exact) / n,
        "mean_top10_jaccard": sum(x["jaccard"] for x in exact) / n,
    }
    if tiered:
        gte = [x for x in tiered if x["total_relation"] != "eq"]
        eq = [x for x in tiered if x["total_relation"] == "eq"]
        ag["tiered_gte"] = len(gte)
        ag["tiered_total_sound_fraction"] = (
            sum(x["docuseek_total"] <= x["raw_total"] for x in gte)
            + sum(x["docuseek_total"] == x["raw_total"] for x in eq)
        ) / len(tiered)
        ag["tiered_mean_top10_jaccard"] = sum(x["jaccard"] for x in tiered) / len(tiered)
        if all("ids_matching" in x for x in tiered):
            # A document matching through the parts of a joined word is a match by
            # Docuseek's tokenization, which the raw tsvector does not have.
            by_parts = [x for x in tiered if x["ids_matching"] < len(x["docuseek_ids"])]
            ag["tiered_ids_all_match"] = all(
                x.get("ids_matching_by_parts") == len(x["docuseek_ids"]) for x in by_parts
            )
            ag["tiered_ids_matching_by_parts"] = sum(
                x.get("ids_matching_by_parts", x["ids_matching"]) - x["ids_matching"]
                for x in by_parts
            )
    return ag


def targets(res: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's targets, evaluated on this run."""
    out: dict[str, Any] = {}
    ratio = res.get("ingest", {}).get("ratio", {}).get("1000")
    if ratio is not None:
        out["ingest_b1000_ratio_ge_0.70"] = {"value": ratio, "pass": ratio >= 0.70}
    ov = res.get("search", {}).get("overhead_p99", {})
    vals = [v.get("8") for v in ov.values() if v.get("8") is not None]
    vals = [x for x in vals if x == x and x > 0]  # drop NaN/0: no request completed
    worst = max(vals, default=None)
    if worst is not None:
        out["search_p99_c8_within_2x_raw"] = {"value": worst, "pass": worst <= 2.0}
    if res["meta"]["backend"] == "postgres" and res["meta"]["docs"] >= 1_000_000:
        dsr = res.get("search", {}).get("docuseek", {})
        # A class where no request completed within the window counts as infinitely slow.
        p99s = {
            cls: (v["8"]["p99_ms"] if v["8"].get("requests") else float("inf"))
            for cls, v in dsr.items()
            if "8" in v
        }
        if p99s:
            worst_ms = max(p99s.values())
            out["pg_1m_p99_c8_under_100ms"] = {
                "value": worst_ms,
                "per_class": p99s,
                "pass": worst_ms < 100,
            }
    return out


def result_path(res: dict[str, Any], out_dir: Path) -> Path:
    date = res["meta"]["date"][:10]
    label = ("-" + res["meta"]["label"]) if res["meta"].get("label") else ""
    return out_dir / f"{date}-{res['meta']['backend']}-{res['meta']['scale']}{label}.json"


def save(res: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = result_path(res, out_dir)
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    return path


def cleanup(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)
