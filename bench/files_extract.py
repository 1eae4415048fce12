"""Extraction throughput of the worker's sandbox: files/s and MB/s at 1 and 2 extraction
children at once (what 1 and 2 worker processes run), and the children's peak RSS.

Corpus: PDFs written by reportlab (prose on every page, 1 to 40 pages) and the HTML pages
of Debian's documentation on this machine (/usr/share/doc). Needs the `test` extra.

    .venv/bin/python -m bench.files_extract --pdfs 200 --html 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from docuseek.files.extract import ExtractionError
from docuseek.files.sandbox import Limits, extract_in_child

WORDS = [
    "search",
    "index",
    "document",
    "postgres",
    "worker",
    "outbox",
    "transaction",
    "extraction",
    "page",
    "highlight",
    "query",
    "collection",
    "schema",
    "field",
    "facet",
    "cursor",
    "ranking",
    "backend",
]


def make_pdfs(count: int, seed: int = 7) -> list[bytes]:
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        buffer = io.BytesIO()
        c = canvas.Canvas(buffer, pagesize=A4)
        for _page in range(rng.randint(1, 40)):
            y = 800
            for _line in range(45):
                c.drawString(50, y, " ".join(rng.choice(WORDS) for _ in range(12)))
                y -= 16
            c.showPage()
        c.save()
        out.append(buffer.getvalue())
    return out


def debian_html(count: int) -> list[bytes]:
    paths = [p for p in sorted(Path("/usr/share/doc").rglob("*.html")) if p.is_file()][:count]
    return [p.read_bytes() for p in paths]


def run(files: list[bytes], parallel: int) -> dict[str, Any]:
    failed = 0

    def one(data: bytes) -> None:
        nonlocal failed
        try:
            extract_in_child(data, None, Limits())
        except ExtractionError:
            failed += 1

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(one, files))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the children: what the files cost, whatever else the machine was running.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    megabytes = sum(len(f) for f in files) / 1e6
    return {
        "parallel": parallel,
        "files": len(files),
        "failed": failed,
        "megabytes": round(megabytes, 2),
        "seconds": round(seconds, 2),
        "files_per_s": round(len(files) / seconds, 2),
        "mb_per_s": round(megabytes / seconds, 2),
        "child_cpu_ms_per_file": round(cpu / len(files) * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pdfs", type=int, default=200)
    parser.add_argument("--html", type=int, default=200)
    args = parser.parse_args()
    corpora = {"pdf": make_pdfs(args.pdfs), "html": debian_html(args.html)}
    results = []
    for kind, files in corpora.items():
        for parallel in (1, 2):
            results.append({"kind": kind, **run(files, parallel)})
            print(json.dumps(results[-1]), flush=True)
    # ru_maxrss of the children: the largest any extraction child reached (KiB on Linux).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"peak_child_rss_mib": round(peak / 1024, 1)}))


if __name__ == "__main__":
    main()
