"""PostgreSQL backend: the indexed words a query word with typos also matches. They come
from the collection's vocabulary of lexemes, and go into the query through to_tsquery,
which stems what it is given: each is spelled as a word that stems to it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from docuseek import collections
from docuseek.search.base import SearchQuery
from docuseek.search.postgres import planner, statistics, typos
from docuseek.search.postgres.layout import table_name
from tests.backends.postgres.proofs import load_analyzed
from tests.helpers import Service

FIELDS = {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}


def candidates(engine: Engine, q: str, name: str = "docs") -> tuple[dict[int, list[str]], str]:
    """The typo candidates a search of `q` in collection `name` finds, and its query's
    text for to_tsquery."""
    collection = collections.load_cached(engine, name)
    table = table_name(collection, collection.generation)
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        query = SearchQuery(q=q, limit=10, prefix=False)
        search = planner.Search(driver, collection, table, query, exact_limit=20)
        return search.typo_lexemes, str(search.params.values["q"])


@pytest.fixture
def docs(service: Service, engine: Engine) -> list[dict[str, Any]]:
    corpus = [{"id": f"e{i}", "title": "Widget", "body": "It embeds a font."} for i in range(20)]
    corpus += [
        {"id": "b1", "title": "Odd", "body": "The word ebgeds, once."},
        {"id": "t1", "title": "Traverse a tree", "body": "Walks every node."},
    ]
    load_analyzed(service, engine, FIELDS, corpus)
    return corpus


def test_a_lexeme_that_stems_to_another_is_spelled_as_a_word_that_stems_to_it(
    engine: Engine, service: Service, docs: list[dict[str, Any]]
) -> None:
    """`trevorsing` is two typos from `traverse` and no one-edit variant of it stems to
    `travers`: the candidate is found near the typed word's stem, and spelled with the
    final `e` its word had (to_tsquery stems `travers` itself to `traver`)."""
    lexemes, text = candidates(engine, "trevorsing")
    assert lexemes == {0: ["travers"]}
    assert "'traverse'" in text
    hits = service.search("docs", q="trevorsing", prefix="false")["hits"]
    assert [h["id"] for h in hits] == ["t1"]


def test_of_equally_near_candidates_the_more_common_come_first(
    engine: Engine, docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`egbeds` is one edit from `embeds` (stem `emb`, in 20 documents) and from
    `ebgeds` (stem `ebg`, in one): with room for one candidate, the common one is it."""
    monkeypatch.setattr(typos, "MAX_TYPO_CANDIDATES", 2)
    lexemes, _ = candidates(engine, "egbeds")
    assert lexemes == {0: ["emb", "ebg"]}
    monkeypatch.setattr(typos, "MAX_TYPO_CANDIDATES", 1)
    lexemes, text = candidates(engine, "egbeds")
    assert lexemes == {0: ["emb"]}
    assert "'embeds'" in text


def test_equally_near_candidates_cut_by_the_cap_are_told_apart_by_their_documents(
    engine: Engine, service: Service
) -> None:
    """`egbeds` is one edit from `embeds` (stem `emb`, in five documents) and from twelve
    stray words found once each (`egbeda`, `egbedb`, …), all as near. ANALYZE has not
    run, so its statistics cannot tell them apart, and the strays are nearer in length
    to the word typed: the documents holding each decide which ten are kept."""
    service.create_collection("ties", FIELDS)
    corpus = [{"id": f"e{i}", "title": "Widget", "body": "It embeds a font."} for i in range(5)]
    corpus += [
        {"id": f"s{c}", "title": "Stray", "body": f"The token egbed{c}, once."}
        for c in "abcfghjkmnpq"
    ]
    service.add("ties", corpus)
    service.drain()
    statistics.forget()
    lexemes, text = candidates(engine, "egbeds", "ties")
    assert len(lexemes[0]) == typos.MAX_TYPO_CANDIDATES
    assert lexemes[0][0] == "emb"
    assert "'embeds'" in text
    hits = service.search("ties", q="egbeds", prefix="false", limit=20)["hits"]
    assert {f"e{i}" for i in range(5)} <= {h["id"] for h in hits}
