"""PostgreSQL backend: a query whose last word is being typed may find its matches through
its other words and check each of them for the prefix, instead of reading every posting
of the words the prefix begins from the index. Which way a search goes is the planner's
estimate; the answer must not depend on it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from docuseek import collections
from docuseek.search.base import SearchBackend, SearchQuery
from docuseek.search.postgres import PostgresBackend, context, planner, proofs, statistics
from docuseek.search.postgres.layout import table_name
from docuseek.search.postgres.statistics import common_lexemes
from tests.backends.postgres.proofs import load_analyzed, rows_found
from tests.backends.postgres.test_postgres_ranking import page_all
from tests.helpers import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}
PREFIX_WORDS = ["documentation", "document", "docutils", "documentary"]


@pytest.fixture
def backend(engine: Engine) -> Iterator[SearchBackend]:
    pg_backend = PostgresBackend(engine, exact_limit=20)
    yield pg_backend
    pg_backend.close()


def make_corpus() -> list[dict[str, Any]]:
    """Most documents hold a word `docu` begins; few hold `zebra`; `common` is in half,
    so `common docu` has more matches than exact_limit and is tiered."""
    docs = []
    for i in range(300):
        words = [PREFIX_WORDS[i % 4]] if i % 5 else ["plain"]
        if i % 10 == 3:
            words.append("zebra")
        if i % 20 == 3:
            words.append("quagga")
        if i % 2:
            words.append("common")
        title = " ".join(words[:1] + ["tool"]) if i % 3 == 0 else "tool"
        docs.append({"id": f"d{i:03d}", "title": title, "body": " ".join(words) + " text"})
    return docs


@pytest.fixture
def corpus(service: Service, engine: Engine) -> list[dict[str, Any]]:
    docs = make_corpus()
    load_analyzed(service, engine, FIELDS, docs)
    return docs


def matching(docs: list[dict[str, Any]], words: list[str], without: str = "") -> list[str]:
    def text_of(doc: dict[str, Any]) -> list[str]:
        return f"{doc['title']} {doc['body']}".split()

    return sorted(
        d["id"]
        for d in docs
        if all(w in text_of(d) for w in words)
        and any(t.startswith("docu") for t in text_of(d))
        and without not in text_of(d)
    )


@pytest.mark.parametrize(
    ("params", "words", "without"),
    [
        ({"q": "zebra docu"}, ["zebra"], ""),
        ({"q": "zebra -quagga docu"}, ["zebra"], "quagga"),
        # `zebar` is one typo from `zebra`: the rows found through the other words must
        # include the typo's.
        ({"q": "zebar docu", "typo": "true"}, ["zebra"], ""),
        ({"q": "common docu"}, ["common"], ""),  # tiered: more than exact_limit
        ({"q": "the docu"}, [], ""),  # a stop word: no other word to go through
    ],
)
def test_a_prefix_finds_the_same_matches_either_way(
    service: Service,
    corpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
    words: list[str],
    without: str,
) -> None:
    chosen: list[set[str]] = []
    original = planner.Search._words_before_prefix

    def spy(self: planner.Search, *args: Any) -> None:
        original(self, *args)
        chosen.append(set(self.words_first_columns))

    monkeypatch.setattr(planner.Search, "_words_before_prefix", spy)
    answers = {}
    for cost in (0, math.inf):  # through the other words wherever possible, and never
        monkeypatch.setattr(context, "PREFIX_CHECK_COST", cost)
        chosen.clear()
        ids, pages = page_all(service, **params)
        answers[cost] = (ids, pages[0]["total"], [h["id"] for h in pages[0]["hits"]])
        assert len(ids) == len(set(ids))
        assert sorted(ids) == matching(corpus, words, without)
        expected_ways = {"tsv", "tsv_top"} if cost == 0 and words else set()
        assert chosen and all(c == expected_ways for c in chosen)
    assert answers[0] == answers[math.inf]  # the same first page, in the same order
    if params["q"] == "common docu":
        assert pages[0]["ranking"] == "tiered"


def proof_rows(engine: Engine, q: str) -> tuple[str, set[str]]:
    """The completion proof a first page of `q` would try, and the rows it finds."""
    query = SearchQuery(q=q, limit=10, prefix=True, typo=False)
    return rows_found(engine, "docs", query, 20, planner.Search._completion_proof)


# The English stems of PREFIX_WORDS, as the index holds them.
STEMS = {
    "documentation": "document",
    "document": "document",
    "docutils": "docutil",
    "documentary": "documentari",
}


def test_a_prefixs_proof_finds_the_matches_holding_its_most_common_completions(
    engine: Engine, corpus: list[dict[str, Any]]
) -> None:
    """`common docu`: the proof's rows are the matches holding `common` and one of the two
    words `docu` begins that ANALYZE counted most often; more than exact_limit of them."""
    collection = collections.load_cached(engine, "docs")
    table = table_name(collection, collection.generation)
    statistics.forget()
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        common = [lexeme for lexeme, _ in common_lexemes(driver, table)]
    completions = [lexeme for lexeme in common if lexeme.startswith("docu")]
    assert sorted(completions) == sorted(set(STEMS.values()))
    assert completions[0] == "document"  # in half of the documents holding a `docu` word
    proof, found = proof_rows(engine, "common docu")
    assert proof
    top = set(completions[: proofs.PROOF_COMPLETIONS])
    expected = {
        d["id"]
        for d in corpus
        if "common" in d["body"].split() and top & {STEMS.get(w) for w in d["body"].split()}
    }
    assert found == expected
    assert len(found) > 20


def test_a_prefix_is_not_proven_by_completions_the_statistics_expect_few_of(
    engine: Engine, corpus: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(proofs, "COMPLETION_PROOF_EXPECTED", (1_000.0, 10_000.0))
    assert proof_rows(engine, "common docu") == ("", set())
    monkeypatch.setattr(proofs, "COMPLETION_PROOF_EXPECTED", (0.0, 0.001))
    assert proof_rows(engine, "common docu") == ("", set())


@pytest.mark.parametrize("q", ["common docu", "zebra docu", "zebra -quagga docu", "docu"])
def test_a_prefix_search_answers_the_same_with_or_without_the_proof(
    service: Service,
    corpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    q: str,
) -> None:
    """With the proof (which `zebra docu` fails: half its matches hold the top two
    completions, fewer than exact_limit) and without it, a search answers the same."""
    tried: list[bool] = []
    original = planner.Search._completion_proof

    def spy(self: planner.Search) -> str:
        proof = original(self)
        tried.append(bool(proof))
        return proof

    monkeypatch.setattr(planner.Search, "_completion_proof", spy)
    answers = []
    for expected in (proofs.COMPLETION_PROOF_EXPECTED, (math.inf, math.inf)):
        monkeypatch.setattr(proofs, "COMPLETION_PROOF_EXPECTED", expected)
        tried.clear()
        ids, pages = page_all(service, q=q)
        words, without = (q.split()[:1] if " " in q else []), ("quagga" if "-quagga" in q else "")
        assert sorted(ids) == matching(corpus, words, without)
        first = pages[0]
        answers.append((ids, first["total"], first["total_relation"], first["ranking"]))
        assert any(tried) == (expected != (math.inf, math.inf) and q != "docu")
    assert answers[0] == answers[1]


def happy_corpus() -> list[dict[str, Any]]:
    """`common happy`, its last word being typed, is `common & happi:*` as PostgreSQL stems
    it. The lexemes ANALYZE finds most often that begin with `happy` are `happy` (the stem
    of `happyness`) and `happyland`, which `happi:*` does not match; `happier` it does."""
    docs = []
    for i in range(200):
        words = ["common", "text"]
        words += ["happyness"] if i % 2 == 0 else []
        words += ["happyland"] if i % 3 == 0 else []
        words += ["happier"] if i % 5 == 0 else []
        docs.append({"id": f"h{i:03d}", "title": "tool", "body": " ".join(words)})
    return docs


@pytest.fixture
def happy(service: Service, engine: Engine) -> list[dict[str, Any]]:
    docs = happy_corpus()
    load_analyzed(service, engine, FIELDS, docs, name="happy")
    return docs


def test_a_prefixs_proof_checks_its_rows_when_the_stemmed_prefix_misses_its_completions(
    engine: Engine, service: Service, happy: list[dict[str, Any]]
) -> None:
    """The proof's completions begin with the typed `happy`, not with `happi`: its rows
    are each checked, and hold only the matches."""
    query = SearchQuery(q="common happy", limit=10, prefix=True, typo=False)
    proof, found = rows_found(engine, "happy", query, 20, planner.Search._completion_proof)
    matches = {d["id"] for d in happy if "happier" in d["body"].split()}
    assert proof
    assert found == {
        d["id"]
        for d in happy
        if "happier" in d["body"].split() and {"happyness", "happyland"} & set(d["body"].split())
    }
    assert found < matches and len(matches) > 20
    ids, _ = page_all(service, name="happy", q="common happy", prefix="true", typo="false")
    assert sorted(ids) == sorted(matches)


@pytest.mark.parametrize(
    ("name", "q", "lexemes", "matched"),
    [
        ("docs", "common docu", ["document", "docutil"], True),
        ("happy", "common happy", ["happy", "happyland"], False),
        ("happy", "common happy", ["happier"], True),
        ("happy", "common happ", ["happy", "happier"], True),
    ],
)
def test_whether_the_typed_prefix_matches_its_completions_is_asked_as_postgresql_stems_it(
    engine: Engine,
    corpus: list[dict[str, Any]],
    happy: list[dict[str, Any]],
    name: str,
    q: str,
    lexemes: list[str],
    matched: bool,
) -> None:
    """The proof spares each of its rows the check when the prefix matches every one of
    its completions."""
    query = SearchQuery(q=q, limit=10, prefix=True, typo=False)
    collection = collections.load_cached(engine, name)
    table = table_name(collection, collection.generation)
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        search = planner.Search(driver, collection, table, query, exact_limit=20)
        condition = search._prefix_matches(lexemes)
        assert driver.execute(f"SELECT {condition}", search.params.values).fetchone() == (matched,)
