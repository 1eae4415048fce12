"""`python -m bench` — run the benchmarks, or regenerate the report.

python -m bench run                       # default set: 64k, every backend
python -m bench run --backend postgres --scale 1m --concurrency 1,8,32
python -m bench corpus --scale 1m         # only build the corpus file
python -m bench report                    # RESULTS.md + plot from bench/results/*.json
python -m bench relevance --backend postgres,opensearch   # relevance harness (64k)
python -m bench files-extract --pdfs 200 --html 200       # the worker's file extraction
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import corpus, queries, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run benchmarks (the default)")
    r.add_argument("--backend", default="all", help="postgres, opensearch or all (default: all)")
    r.add_argument("--scale", default="64k", help="comma list of 64k, 1m, 10m (default 64k)")
    r.add_argument("--docs", type=int, help="use exactly N documents (smoke runs)")
    r.add_argument("--concurrency", default="1,8,32")
    r.add_argument("--duration", type=float, default=4.0, help="seconds per search measurement")
    r.add_argument("--warmup", type=float, default=1.0)
    r.add_argument("--classes", default=",".join(queries.CLASSES))
    r.add_argument("--batch1-docs", type=int, default=2000)
    r.add_argument("--batch100-docs", type=int, default=20000)
    r.add_argument("--ingest-concurrency", type=int, default=2)
    r.add_argument(
        "--ingest-rounds",
        type=int,
        help="alternated batch-1000 loads per side; the ratio is their median"
        " (default: bench.run.ROUNDS_SMALL below bench.run.BIG_DOCS documents, else 1)",
    )
    r.add_argument("--lag-seconds", type=float, default=15.0)
    r.add_argument("--lag-rate", type=float, default=200.0, help="docs/s of the steady load")
    r.add_argument("--lag-batch", type=int, default=10)
    r.add_argument("--no-peers", action="store_true")
    r.add_argument(
        "--index-phrases",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="PostgreSQL: collections with index_phrases (Docuseek's default), and the raw"
        " table with the same pairs column in its GIN index (raw queries do not use it);"
        " --no-index-phrases: both without",
    )
    r.add_argument("--api-workers", type=int, default=1, help="uvicorn processes of the api")
    r.add_argument("--workers", type=int, default=1, help="docuseek worker processes")
    r.add_argument(
        "--statement-timeout",
        type=float,
        default=10.0,
        help="seconds; statement_timeout of the api's and raw search connections (0: none)",
    )
    r.add_argument(
        "--untuned-postgres",
        action="store_true",
        help="PostgreSQL defaults instead of docuseek.embedded.tuning()",
    )
    r.add_argument(
        "--one-engine-at-a-time",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the raw engine and delete its index before Docuseek's batch-1000 load "
        "(default: on for opensearch at 500k documents or more)",
    )
    r.add_argument(
        "--osmem-gogc",
        type=int,
        help="GOGC of osmem-server (default: Go's 100; 25 at 500k documents or more)",
    )
    r.add_argument("--osmem-gomemlimit", default="", help="GOMEMLIMIT of osmem-server, e.g. 14GiB")
    r.add_argument("--no-wrk", action="store_true", help="use the Python HTTP driver")
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--label", default="", help="tag the result (before/after comparisons)")
    r.add_argument("--out-dir", type=Path, default=report.RESULTS_DIR)
    r.add_argument("--work-dir", type=Path, default=corpus.DATA_DIR / "run")
    r.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    c = sub.add_parser("corpus", help="build corpus files only")
    c.add_argument("--scale", default="64k")
    c.add_argument("--seed", type=int, default=42)
    c.add_argument("--update", action="store_true", help="apt-get update first")
    sub.add_parser("queries", help="rebuild bench/queries.json from the real corpus")
    sub.add_parser("report", help="regenerate RESULTS.md and the plot")
    rel = sub.add_parser("relevance", help="known-item, name, typo and prefix query relevance")
    rel.add_argument("--backend", default="postgres,opensearch", help="comma list of backends")
    rel.add_argument("--queries", type=int, default=500, help="queries per base set")
    rel.add_argument("--seed", type=int, default=42)
    rel.add_argument("--docs", type=int, help="use the first N documents (smoke runs)")
    rel.add_argument("--no-peers", action="store_true")
    rel.add_argument("--out-dir", type=Path, default=report.RESULTS_DIR)
    fx = sub.add_parser("files-extract", help="file extraction throughput (sandbox children)")
    fx.add_argument("--pdfs", type=int, default=200)
    fx.add_argument("--html", type=int, default=200)
    fx.add_argument("--out-dir", type=Path, default=report.RESULTS_DIR)
    args = ap.parse_args(argv if argv is not None else (sys.argv[1:] or ["run"]))

    if args.cmd == "report":
        print(report.regenerate())
        return 0
    if args.cmd == "relevance":
        from bench import relevance

        relevance.execute(
            relevance.Options(
                backends=args.backend.split(","),
                queries=args.queries,
                seed=args.seed,
                docs=args.docs,
                peers=not args.no_peers,
                out_dir=args.out_dir,
            )
        )
        return 0
    if args.cmd == "files-extract":
        from bench import files_extract

        print(files_extract.measure({"pdf": args.pdfs, "html": args.html}, args.out_dir))
        files_extract.regenerate_section(report.RESULTS_MD, args.out_dir)
        return 0
    if args.cmd == "queries":
        queries.save(queries.build())
        print(queries.QUERIES_FILE)
        return 0
    if args.cmd == "corpus":
        path = corpus.ensure_real_corpus(update=args.update)
        print(path)
        for s in args.scale.split(","):
            if s != "64k":
                from bench import synth
                from bench.run import SCALES

                n = SCALES[s]
                assert n is not None  # every scale but 64k is synthetic
                print(synth.ensure_synth_corpus(n, args.seed))
        return 0

    from bench import run as runmod

    backends = ["postgres", "opensearch"] if args.backend == "all" else args.backend.split(",")
    scales = ["smoke"] if args.docs and args.docs < 10_000 else args.scale.split(",")
    failed = False
    for scale in scales:
        for backend in backends:
            opts = runmod.Options(
                backend=backend,
                scale=scale,
                docs=args.docs,
                concurrency=[int(x) for x in args.concurrency.split(",")],
                duration=args.duration,
                warmup=args.warmup,
                batch1_docs=args.batch1_docs,
                batch100_docs=args.batch100_docs,
                ingest_concurrency=args.ingest_concurrency,
                ingest_rounds=args.ingest_rounds,
                lag_seconds=args.lag_seconds,
                lag_rate=args.lag_rate,
                lag_batch=args.lag_batch,
                peers=not args.no_peers,
                use_wrk=False if args.no_wrk else None,
                seed=args.seed,
                work_dir=args.work_dir / f"{backend}-{scale}",
                out_dir=args.out_dir,
                label=args.label,
                classes=args.classes.split(","),
                api_workers=args.api_workers,
                workers=args.workers,
                statement_timeout=args.statement_timeout,
                tune_postgres=not args.untuned_postgres,
                one_engine_at_a_time=args.one_engine_at_a_time,
                osmem_gogc=args.osmem_gogc,
                osmem_gomemlimit=args.osmem_gomemlimit,
                index_phrases=args.index_phrases,
            )
            res = runmod.Run(opts).execute()
            path = runmod.save(res, args.out_dir)
            print(f"wrote {path}")
            if res["errors"]:
                failed = True
                print("errors:\n  " + "\n  ".join(res["errors"]))
            runmod.cleanup(opts.work_dir)
    if not args.no_report:
        print(report.regenerate(args.out_dir))
    return 1 if failed else 0
