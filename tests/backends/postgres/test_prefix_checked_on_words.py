"""PostgreSQL backend: a query whose last word is being typed may find its matches through
its other words and check each of them for the prefix, instead of reading every posting
of the words the prefix begins from the index. Which way a search goes is the planner's
estimate; the answer must not depend on it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from docuseek import collections
from docuseek.search.base import SearchBackend
from docuseek.search.postgres import PostgresBackend, planner
from docuseek.search.postgres.layout import table_name
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
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    collection = collections.load_cached(engine, "docs")
    with engine.begin() as conn:  # the planner's estimates decide the way
        conn.execute(text(f"ANALYZE {table_name(collection, collection.generation)}"))
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
        monkeypatch.setattr(planner, "PREFIX_CHECK_COST", cost)
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
