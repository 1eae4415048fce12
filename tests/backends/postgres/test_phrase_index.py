"""index_phrases (PostgreSQL): a phrase query first asks the index for its adjacent word
pairs. The pairs must only ever narrow the phrase check, never change what matches: a
collection with them and one without, holding the same documents, answer alike."""

from __future__ import annotations

import random
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from docuseek import collections
from docuseek.search.base import SearchQuery
from docuseek.search.postgres import PostgresBackend
from docuseek.search.postgres.layout import is_one_pair, required_pairs, table_name
from docuseek.search.postgres.planner import Search
from tests.helpers import Service

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "section": {"type": "keyword", "facet": True},
}
WORDS = [
    "red",
    "green",
    "blue",
    "fox",
    "dog",
    "cat",
    "runs",
    "jumps",
    "over",
    "under",
    "quick",
    "slow",
    "library",
    "docs",
]

EDGE_DOCS: list[dict[str, Any]] = [
    # The fields' gap: "title end" + "body start" is no phrase.
    {"id": "gap", "title": "the final word", "body": "start of the body"},
    # Compound words: one lexeme for the whole, then one per part.
    {"id": "compound", "body": "a wi-fi driver for the card"},
    # A stop word inside: `"part of speech"` is `part <2> speech`.
    {"id": "stop", "body": "every part of speech is tagged"},
    # Past position 16,383 every word is put at 16,383: here "beta", "gamma" and "delta"
    # all sit right after "alpha" (16,382), and a phrase check finds each of them there.
    {"id": "long", "body": "lorem " * 16381 + "alpha beta gamma delta"},
    {"id": "repeat", "title": "docs docs docs", "body": "library library docs"},
]
EDGE_QUERIES = [
    '"final word"',
    '"word start"',
    '"wi-fi driver"',
    '"fi driver"',
    '"part of speech"',
    '"part speech"',
    '"alpha beta"',
    '"alpha gamma"',
    '"alpha delta"',
    '"gamma delta"',
    '"docs docs"',
    '"library docs"',
    'library "docs docs"',
    '"library docs" or "red fox"',
    '-"library docs" docs',
    '"library docs" section:x',
]


def corpus(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"d{i}",
            "title": " ".join(rng.choices(WORDS, k=rng.randint(1, 4))),
            "body": " ".join(rng.choices(WORDS, k=rng.randint(0, 30))),
            "section": rng.choice(["x", "y"]),
        }
        for i in range(n)
    ] + EDGE_DOCS


def all_ids(service: Service, name: str, q: str) -> tuple[int, list[str]]:
    """Every match of q (in result order) and the total, paging with the cursor."""
    ids: list[str] = []
    params: dict[str, Any] = {"q": q, "limit": 100, "highlight": "false"}
    while True:
        page = service.search(name, **params)
        ids += [hit["id"] for hit in page["hits"]]
        if not page.get("next_cursor"):
            return page["total"], ids
        params["cursor"] = page["next_cursor"]


def match_condition(service: Service, name: str, q: str) -> str:
    collection = collections.load_cached(service.engine, name)
    assert isinstance(service.backend, PostgresBackend)
    with service.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        search = Search(
            driver,
            collection,
            table_name(collection, collection.generation),
            SearchQuery(q=q),
            exact_limit=service.backend.exact_limit,
        )
        return search.match


def test_phrases_match_the_same_documents_with_and_without_pairs(service: Service) -> None:
    docs = corpus(400, seed=7)
    response = service.client.put(
        "/collections/plain", json={"fields": FIELDS, "index_phrases": False}
    )
    assert response.status_code == 201 and response.json()["index_phrases"] is False
    response = service.client.put("/collections/pairs", json={"fields": FIELDS})
    assert response.status_code == 201 and response.json()["index_phrases"] is True  # default
    service.add("plain", docs)
    service.add("pairs", docs)
    service.drain()

    rng = random.Random(11)
    phrases = [f'"{" ".join(rng.choices(WORDS, k=rng.randint(2, 3)))}"' for _ in range(40)]
    matched = 0
    for q in EDGE_QUERIES + phrases:
        plain, pairs = all_ids(service, "plain", q), all_ids(service, "pairs", q)
        assert pairs == plain, q
        matched += plain[0] > 0
    assert matched > 30  # the queries do find documents

    # The edge cases the pairs must not lose, checked against what a phrase check finds.
    for q, expected in [
        ('"alpha gamma"', ["long"]),
        ('"alpha delta"', ["long"]),
        ('"wi-fi driver"', ["compound"]),
        ('"part of speech"', ["stop"]),
        ('"word start"', []),
    ]:
        assert all_ids(service, "pairs", q)[1] == expected, q

    # ...and the pairs are really asked for (or the comparison above proves nothing),
    # only where every match must hold them.
    assert "pairs @>" in match_condition(service, "pairs", '"library docs"')
    assert "pairs @>" in match_condition(service, "pairs", 'red "library docs" fox')
    assert "pairs @>" not in match_condition(service, "pairs", '"library docs" or red')
    assert "pairs @>" not in match_condition(service, "pairs", '"part of speech"')
    assert "pairs @>" not in match_condition(service, "plain", '"library docs"')

    # A synonym's (or a typo's) OR beside a phrase leaves the phrase required: its pairs
    # still narrow the search, and find what the plain phrase check finds.
    for name in ("plain", "pairs"):
        body = {"synonyms": [["red", "fox"]]}
        assert service.client.put(f"/collections/{name}/settings", json=body).status_code == 200
    q = '"library docs" red'
    assert "pairs @>" in match_condition(service, "pairs", q)
    assert all_ids(service, "pairs", q) == all_ids(service, "plain", q)
    assert all_ids(service, "pairs", q)[0] > 0


def test_updates_and_deletes_keep_the_pairs_current(service: Service) -> None:
    service.client.put(
        "/collections/notes", json={"fields": FIELDS, "index_phrases": True}
    ).raise_for_status()
    service.add("notes", [{"id": "a", "body": "quick brown fox"}, {"id": "b", "body": "brown fox"}])
    service.drain()
    assert all_ids(service, "notes", '"brown fox"')[1] == ["a", "b"]
    service.add("notes", [{"id": "a", "body": "fox brown"}])
    response = service.client.delete("/collections/notes/documents/b")
    assert response.status_code == 202, response.text
    service.drain()
    assert all_ids(service, "notes", '"brown fox"') == (0, [])
    assert all_ids(service, "notes", '"fox brown"') == (1, ["a"])
    collection = collections.load_cached(service.engine, "notes")
    with service.engine.connect() as conn:
        tombstone = conn.execute(
            text(f"SELECT live, pairs FROM {table_name(collection, 1)} WHERE id = 'b'")
        ).one()
    assert tuple(tombstone) == (False, None)


def test_index_phrases_is_set_when_a_collection_is_created(service: Service) -> None:
    body = {"fields": FIELDS, "index_phrases": True}
    assert service.client.put("/collections/notes", json=body).status_code == 201
    # An update that leaves it out keeps it.
    more = {**FIELDS, "year": {"type": "integer"}}
    response = service.client.put("/collections/notes", json={"fields": more})
    assert response.status_code == 200 and response.json()["index_phrases"] is True
    # Changing it is refused, and nothing of the request is stored.
    fewer = {"fields": {**more, "extra": {"type": "keyword"}}, "index_phrases": False}
    response = service.client.put("/collections/notes", json=fewer)
    assert response.status_code == 409
    assert response.json()["error"]["details"] == [{"loc": ["body", "index_phrases"]}]
    assert "index_phrases" in response.json()["error"]["message"]
    described = service.client.get("/collections/notes").json()
    assert set(described["fields"]) == {"title", "body", "section", "year"}
    assert described["index_phrases"] is True
    # A collection created without it gets the default (on); one created with false keeps
    # false through an update that leaves it out, and refuses true.
    service.client.put("/collections/default", json={"fields": FIELDS}).raise_for_status()
    assert service.client.get("/collections/default").json()["index_phrases"] is True
    body = {"fields": FIELDS, "index_phrases": False}
    service.client.put("/collections/plain", json=body).raise_for_status()
    response = service.client.put("/collections/plain", json={"fields": more})
    assert response.status_code == 200 and response.json()["index_phrases"] is False
    response = service.client.put("/collections/plain", json={**body, "index_phrases": True})
    assert response.status_code == 409
    assert set(service.client.get("/collections/plain").json()["fields"]) == set(more)


@pytest.mark.parametrize(
    ("tsquery", "pairs", "complete"),
    [
        ("'librari' <-> 'document'", ["librari document"], True),
        ("'fox' & 'quick' <-> 'brown' <-> 'fox'", ["quick brown", "brown fox"], False),
        ("'a' <-> 'b' & 'c' <-> 'a' <-> 'b'", ["a b", "c a"], True),
        ("'a' <-> 'b' <2> 'c'", ["a b"], False),
        ("'part' <2> 'speech'", [], False),
        ("'b' | 'c' <-> 'd'", [], False),  # an OR: no pair is required
        ("!'b' & 'c' <-> 'd'", [], False),  # a NOT
        ("'it''s' <-> 'o''k'", ["it's o'k"], True),
        ("'pre':* <-> 'fix'", [], False),
        ("'pre':* & 'a' <-> 'b'", ["a b"], False),
        ("( 'a' <-> 'b' ) & 'c'", ["a b"], False),
        ("'a' <-> 'b' ? 'c'", [], False),  # not understood: not used
        ("", [], False),
    ],
)
def test_required_pairs_reads_a_tsquery(tsquery: str, pairs: list[str], complete: bool) -> None:
    assert required_pairs(tsquery) == (pairs, complete)


@pytest.mark.parametrize(
    ("tsquery", "one_pair"),
    [
        ("'command' <-> 'line'", True),
        ("'it''s' <-> 'o''k'", True),
        ("'a' <-> 'b' <-> 'c'", False),  # both pairs held apart is no match
        ("'a' <-> 'b' & 'a' <-> 'b'", False),
        ("'a' <-> 'b' & 'c'", False),
        ("'a' <2> 'b'", False),
        ("'a':A <-> 'b'", False),
        ("'pre':* <-> 'fix'", False),
        ("", False),
    ],
)
def test_a_query_is_one_pair_only_when_its_pair_is_the_whole_match(
    tsquery: str, one_pair: bool
) -> None:
    """Such a query's matches are counted by their pair alone, without the phrase check."""
    assert is_one_pair(tsquery) is one_pair
