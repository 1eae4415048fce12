"""Extraction throughput of the worker's sandbox: files/s and MB/s at 1 and 2 extraction
children at once (what 1 and 2 worker processes run), and the children's peak RSS per
format.

Corpus: PDFs written by reportlab (prose on every page, 1 to 40 pages) and the HTML pages
of Debian's documentation on this machine (/usr/share/doc). Needs the `test` extra.

    .venv/bin/python -m bench files-extract --pdfs 200 --html 200

Each format runs in a fresh process of its own, so the children's peak RSS (ru_maxrss of
RUSAGE_CHILDREN) is that format's. The result goes to bench/results/files-extract-*.json
and the "File extraction" section of RESULTS.md (kept by `python -m bench report`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
SECTION_START = "<!-- files-extract:start -->"
SECTION_END = "<!-- files-extract:end -->"
KINDS = ("pdf", "html")

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
    from docuseek.files.extract import ExtractionError
    from docuseek.files.sandbox import Limits, extract_in_child

    failed = 0

    def one(data: bytes) -> None:
        nonlocal failed
        try:
            extract_in_child(data, None, Limits())
        except ExtractionError:
            failed += 1

    load_before = os.getloadavg()[0]
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
        "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def measure_kind(kind: str, count: int) -> dict[str, Any]:
    """One format at 1 and 2 children at once, in this process."""
    from docuseek.files import sandbox

    files = make_pdfs(count) if kind == "pdf" else debian_html(count)
    runs = [run(files, parallel) for parallel in (1, 2)]
    # ru_maxrss of the children: the largest any extraction child reached (KiB on Linux).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "kind": kind,
        "runs": runs,
        "peak_child_rss_mib": round(peak / 1024, 1),
        "isolation": sandbox._isolation_logged,
    }


def measure(counts: dict[str, int], out_dir: Path = RESULTS_DIR) -> Path:
    """Each format in a fresh process; the result file's path."""
    started = datetime.now(UTC)
    loads = [os.getloadavg()]
    kinds = []
    for kind, count in counts.items():
        done = subprocess.run(
            [sys.executable, "-m", "bench.files_extract", "--kind", kind, "--count", str(count)],
            capture_output=True,
            text=True,
            check=True,
            cwd=HERE.parent,
        )
        kinds.append(json.loads(done.stdout.strip().splitlines()[-1]))
        loads.append(os.getloadavg())
        print(json.dumps(kinds[-1]), flush=True)
    result = {
        "meta": {
            "kind": "files-extract",
            "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "wall_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
            "git_commit": machine.git_commit(HERE.parent),
            "machine": machine.describe(),
            "load_average_1m_5m_15m": [[round(x, 2) for x in load] for load in loads],
        },
        "kinds": kinds,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"files-extract-{started:%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def load(results_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """The newest files-extract result."""
    newest: dict[str, Any] | None = None
    for p in sorted(results_dir.glob("files-extract-*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if r.get("meta", {}).get("kind") == "files-extract" and (
            newest is None or r["meta"]["date"] >= newest["meta"]["date"]
        ):
            newest = {**r, "_file": p.name}
    return newest


def render(r: dict[str, Any]) -> str:
    m, hw = r["meta"], r["meta"]["machine"]
    loads = [x[0] for x in m["load_average_1m_5m_15m"]]
    loads += [v for k in r["kinds"] for run_ in k["runs"] for v in run_["load_average_1m"]]
    isolation = next((k["isolation"] for k in r["kinds"] if k.get("isolation")), None)
    lines = [
        "## File extraction\n",
        "`python -m bench files-extract` (`bench/files_extract.py`): each file extracted by a"
        " sandbox child of its own, as the worker does, 1 or 2 children at once (what 1 and 2"
        " worker processes run). PDFs written by reportlab (1–40 pages of prose), HTML pages"
        " of Debian's documentation on the machine.\n",
        f"Run {m['date']} (`{r['_file']}`), commit {m['git_commit']}, on {hw.get('cpu_model')}"
        f" — {hw.get('nproc')} cores ({hw.get('virtualization') or 'bare'}),"
        f" {hw.get('memory_bytes', 0) / 2**30:.1f} GiB, kernel {hw.get('kernel')}, Python"
        f" {hw.get('python')}; {m['wall_seconds'] / 60:.1f} min. The machine was shared with"
        f" other jobs: its 1-minute load average was {min(loads):.1f}–{max(loads):.1f} during"
        " the run, so files/s and MB/s are low bounds; the children's CPU per file is the"
        " figure the load does not change."
        + (f" The children's network isolation: {', '.join(isolation)}." if isolation else "")
        + "\n",
        "| format | files | MB | children at once | files/s | MB/s | child CPU per file"
        " | peak child RSS | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for k in r["kinds"]:
        for run_ in k["runs"]:
            lines.append(
                f"| {k['kind'].upper()} | {run_['files']} | {run_['megabytes']:.2f}"
                f" | {run_['parallel']} | {run_['files_per_s']:.2f} | {run_['mb_per_s']:.2f}"
                f" | {run_['child_cpu_ms_per_file']:.0f} ms | {k['peak_child_rss_mib']:.0f} MiB"
                f" | {run_['failed']} |"
            )
    return "\n".join(lines) + "\n"


def splice(md_path: Path, section: str) -> None:
    """Put `section` between the markers in md_path (appended with them if absent)."""
    block = f"{SECTION_START}\n{section.rstrip()}\n{SECTION_END}"
    text = md_path.read_text() if md_path.exists() else ""
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start != -1 and end > start:
        text = text[:start] + block + text[end + len(SECTION_END) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    md_path.write_text(text)


def regenerate_section(md_path: Path = RESULTS_MD, results_dir: Path = RESULTS_DIR) -> None:
    """For `python -m bench report`: keep the file extraction section in a regenerated file."""
    r = load(results_dir)
    if r is not None:
        splice(md_path, render(r))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pdfs", type=int, default=200)
    parser.add_argument("--html", type=int, default=200)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-report", action="store_true", help="do not update RESULTS.md")
    # Internal: one format in this process (what `measure` starts per format).
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        print(json.dumps(measure_kind(args.kind, args.count)))
        return
    path = measure({"pdf": args.pdfs, "html": args.html}, args.out_dir)
    print(path)
    if not args.no_report:
        regenerate_section(RESULTS_MD, args.out_dir)
        print(RESULTS_MD)


if __name__ == "__main__":
    main()
