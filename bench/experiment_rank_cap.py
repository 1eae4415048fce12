"""Experiment: what bounding the ranked candidate set buys on a large corpus.

    python -m bench.experiment_rank_cap --docs 1000000 --caps 1000,10000

Loads the corpus into the raw PostgreSQL table once, then measures every query class at
one concurrency with exact semantics (rank every match, exact total, facets over all
matches: what Docuseek's PostgreSQL backend does) and with the bounded variant for each
cap, plus how much the top 10 changes. Writes results/<date>-rank-cap-<docs>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from bench import corpus, loadgen, machine, queries, servers, synth
from bench.raw_postgres import RawPostgres
from bench.report import RESULTS_DIR


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--caps", default="1000,10000")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--skip-exact",
        action="store_true",
        help="do not time the exact variant (the main run has it)",
    )
    a = ap.parse_args(argv)
    path = (
        corpus.ensure_real_corpus()
        if a.docs <= 70_000
        else synth.ensure_synth_corpus(a.docs, a.seed)
    )
    docs = list(corpus.read_ndjson(path, a.docs))
    work = corpus.DATA_DIR / "run" / "rank-cap"
    pg = servers.Postgres(work / "pg")
    out: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "docs": len(docs),
            "machine": machine.describe(),
            "concurrency": a.concurrency,
        },
        "variants": {},
    }
    try:
        pg.create_database("raw")
        exact = RawPostgres(pg.uri_for("raw"))
        exact.reset()
        out["ingest"] = exact.ingest(docs, 1000, 2)
        with exact.conn() as c:
            c.execute("VACUUM ANALYZE raw_docs")
        exact._local = type(exact._local)()
        qs = queries.load()
        exact_ids = {q["q"] + json.dumps(q.get("filter")): exact.search(q)["ids"] for q in qs}
        print("exact top-10 computed", flush=True)
        variants = ({} if a.skip_exact else {"exact": exact}) | {
            f"cap{n}": RawPostgres(pg.uri_for("raw"), int(n)) for n in a.caps.split(",")
        }
        for name, eng in variants.items():
            res = {}
            for cls, lst in queries.by_class(qs).items():
                r = loadgen.closed_loop(eng.search, lst, a.concurrency, a.duration, 1.0)
                if name != "exact":
                    same = [
                        len(
                            set(eng.search(q)["ids"])
                            & set(exact_ids[q["q"] + json.dumps(q.get("filter"))])
                        )
                        / max(1, len(exact_ids[q["q"] + json.dumps(q.get("filter"))]))
                        for q in lst
                    ]
                    r["top10_overlap_with_exact"] = sum(same) / len(same)
                res[cls] = r
                print(
                    f"{name:9s} {cls:13s} p50 {r['p50_ms']:7.1f} p99 {r['p99_ms']:7.1f} "
                    f"{r['rps']:6.0f}/s overlap {r.get('top10_overlap_with_exact', 1):.2f}",
                    flush=True,
                )
            out["variants"][name] = res
    finally:
        pg.stop()
    p = RESULTS_DIR / f"{out['meta']['date'][:10]}-rank-cap-{len(docs)}.json"
    p.write_text(json.dumps(out, indent=1) + "\n")
    print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
