"""PostgreSQL backend: a one-word query whose top fields alone hold more than exact_limit
matches is proven broad by them, without counting its matches in the whole tsvector,
when ANALYZE's statistics say that is the cheaper way. The answer must not depend on it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from docuseek.search.base import FieldFilter, SearchBackend, SearchQuery
from docuseek.search.postgres import PostgresBackend, planner, proofs
from tests.backends.postgres.proofs import load_analyzed, rows_found
from tests.backends.postgres.test_postgres_ranking import page_all
from tests.helpers import Service

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "kind": {"type": "keyword"},
}
EXACT_LIMIT = 20


@pytest.fixture
def backend(engine: Engine) -> Iterator[SearchBackend]:
    pg_backend = PostgresBackend(engine, exact_limit=EXACT_LIMIT)
    yield pg_backend
    pg_backend.close()


def make_corpus() -> list[dict[str, Any]]:
    """`alpha`: in a third of the bodies and 60 of the titles (its top-field rows are
    few enough to read, its matches sparse enough that counting them reads many rows);
    `delta` the same but in 15 titles, fewer than exact_limit (its proof falls short);
    `epsilon`: in 12 titles and 18 documents in all, which its proof and the rest of its
    matches, told apart, must count once; `beta`: in most bodies, two titles; `gamma`: in
    every title and body (dense, so counting its matches stops at once)."""
    docs = []
    for i in range(300):
        title = ["gamma", "tool"] + (["alpha"] if i % 5 == 0 else []) + (["beta"] if i < 2 else [])
        title += ["delta"] if i % 20 == 0 else []
        body = ["gamma", "text"] + (["alpha"] if i % 3 == 0 else []) + (["beta"] if i % 3 else [])
        body += ["delta"] if i % 3 == 1 else []
        title += ["epsilon"] if i % 25 == 0 else []
        body += ["epsilon"] if i % 25 == 0 or 1 <= i <= 6 else []
        doc = {"id": f"d{i:03d}", "title": " ".join(title), "body": " ".join(body)}
        docs.append({**doc, "kind": "odd" if i % 2 else "even"})
    return docs


@pytest.fixture
def corpus(service: Service, engine: Engine) -> list[dict[str, Any]]:
    docs = make_corpus()
    load_analyzed(service, engine, FIELDS, docs)
    return docs


def proof_rows(
    engine: Engine, q: str, typo: bool = False, filters: tuple[FieldFilter, ...] = ()
) -> tuple[str, set[str]]:
    query = SearchQuery(q=q, limit=10, prefix=False, typo=typo, filters=filters)
    return rows_found(engine, "docs", query, EXACT_LIMIT, planner.Search._top_field_proof)


def test_a_word_is_proven_broad_by_the_rows_holding_it_in_their_top_fields(
    engine: Engine, corpus: list[dict[str, Any]]
) -> None:
    proof, found = proof_rows(engine, "alpha")
    assert "tsv_top" in proof and "tsv @@" not in proof  # no check of the whole tsvector
    assert found == {d["id"] for d in corpus if "alpha" in d["title"].split()}
    assert len(found) > EXACT_LIMIT
    # `alphas` stems to `alpha`, which the statistics know; a typo's matches come from the
    # vocabulary's lexemes.
    assert proof_rows(engine, "alphas")[1] == found
    assert proof_rows(engine, "alpah", typo=True)[1] == found
    proof, found = proof_rows(engine, "delta")  # tried, and falls short
    assert proof and found == {d["id"] for d in corpus if "delta" in d["title"].split()}
    assert 0 < len(found) <= EXACT_LIMIT
    assert len(proof_rows(engine, "epsilon")[1]) == 12


def test_a_word_is_not_proven_by_its_top_fields_where_counting_costs_less(
    engine: Engine, corpus: list[dict[str, Any]]
) -> None:
    assert proof_rows(engine, "beta") == ("", set())  # two top-field rows: a proof would fail
    assert proof_rows(engine, "gamma") == ("", set())  # dense: its count stops early
    assert proof_rows(engine, "alpha gamma") == ("", set())  # two words
    assert proof_rows(engine, "-alpha") == ("", set())
    under_a_filter = (FieldFilter("kind", ("odd",)),)
    assert proof_rows(engine, "alpha", filters=under_a_filter) == ("", set())


@pytest.mark.parametrize(
    "params",
    [
        {"q": "alpha"},
        {"q": "alphas"},
        {"q": "alpah", "typo": "true"},
        {"q": "delta"},
        {"q": "epsilon"},
        {"q": "beta"},
    ],
)
def test_a_word_answers_the_same_with_or_without_the_top_field_proof(
    service: Service,
    corpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
) -> None:
    answers = []
    for expected in (proofs.TOP_PROOF_EXPECTED, math.inf):
        monkeypatch.setattr(proofs, "TOP_PROOF_EXPECTED", expected)
        ids, pages = page_all(service, prefix="false", **params)
        word = params["q"] if params["q"] in ("beta", "delta", "epsilon") else "alpha"
        assert sorted(ids) == sorted(
            d["id"] for d in corpus if word in f"{d['title']} {d['body']}".split()
        )
        first = pages[0]
        hits = [h["id"] for h in first["hits"]]
        answers.append((ids, first["total"], first["total_relation"], first["ranking"], hits))
    assert answers[0] == answers[1]
    if params["q"] == "epsilon":
        assert answers[0][1:4] == (18, "eq", "exact")
    else:
        assert answers[0][2:4] == ("gte", "tiered")


@pytest.mark.parametrize(
    ("word", "stem"),
    [("simple", "simpl"), ("documentation", "document"), ("data", "data"), ("happy", "")],
)
def test_a_words_likely_stem_is_the_longest_common_lexeme_it_begins(word: str, stem: str) -> None:
    common = {"simpl": 0.1, "sim": 0.1, "document": 0.2, "doc": 0.1, "data": 0.3, "happi": 0.1}
    assert proofs._likely_stem(word, common) == stem
