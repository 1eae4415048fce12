"""PostgreSQL backend: exact ranking up to PG_EXACT_LIMIT matches, tiered beyond it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from docuseek import collections
from docuseek.search.base import SearchBackend
from docuseek.search.postgres import PostgresBackend
from docuseek.search.postgres.context import HIGHLIGHT_MAX_CHARS
from docuseek.search.postgres.layout import table_name
from docuseek.search.postgres.tiers import WALK_SETTINGS
from tests.helpers import Service

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "kind": {"type": "keyword", "facet": True},
}


@pytest.fixture
def backend(engine: Engine) -> Iterator[SearchBackend]:
    pg_backend = PostgresBackend(engine, exact_limit=10)
    yield pg_backend
    pg_backend.close()


@pytest.fixture
def corpus(service: Service) -> Iterator[list[dict[str, Any]]]:
    docs = [
        {
            "id": f"d{i:03d}",
            "title": "common ground" if i % 4 == 0 else f"title {i}",
            "body": "common words everywhere" if i % 3 else "rare words",
            "kind": "even" if i % 2 == 0 else "odd",
        }
        for i in range(60)
    ]
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    yield docs


def page_all(
    service: Service, cursor: str | None = None, name: str = "docs", **params: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
    pages = []
    for _ in range(100):
        page = service.search(name, limit=7, **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        ids += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return ids, pages


def test_few_matches_are_ranked_exactly(service: Service, corpus: list[dict[str, Any]]) -> None:
    result = service.search("docs", q="ground rare")  # title and body must both match
    expected = {d["id"] for d in corpus if "ground" in d["title"] and "rare" in d["body"]}
    assert {h["id"] for h in result["hits"]} == expected and len(expected) <= 10
    assert result["total"] == len(expected) and result["total_relation"] == "eq"
    assert result["ranking"] == "exact"
    scores = [h["score"] for h in result["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_many_matches_page_completely_with_top_weight_matches_first(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    matching = [d for d in corpus if "common" in d["title"] or "common" in d["body"]]
    assert len(matching) > 10
    ids, pages = page_all(service, q="common")
    assert sorted(ids) == sorted(d["id"] for d in matching)  # complete, no duplicates
    assert pages[0]["total"] == 10 and pages[0]["total_relation"] == "gte"
    assert all(p["ranking"] == "tiered" for p in pages)
    in_title = [d["id"] for d in matching if "common" in d["title"]]
    # The title matches first: those where ts_rank also rewards `common` in the body
    # (ranked, equal scores so in id order), then the title tier in id order.
    ranked = sorted(d["id"] for d in matching if "common" in d["title"] and "common" in d["body"])
    assert ids[: len(in_title)] == ranked + sorted(set(in_title) - set(ranked))
    assert all(h["score"] is not None and h["highlights"] for p in pages for h in p["hits"])


@pytest.mark.parametrize("index_phrases", [False, True])
def test_tiered_phrases_page_completely_with_top_weight_matches_first(
    service: Service, corpus: list[dict[str, Any]], index_phrases: bool
) -> None:
    """A phrase's tiers are first looked for in id order, then collected (`_tier_ids`):
    a top tier that fills the first page (15 titles), one that is empty, and, with
    index_phrases, the same through the word pairs."""
    name = "docs"  # created with the default: index_phrases
    assert service.client.get(f"/collections/{name}").json()["index_phrases"] is True
    if not index_phrases:
        name = "plain"
        body = {"fields": FIELDS, "index_phrases": False}
        service.client.put(f"/collections/{name}", json=body).raise_for_status()
        service.add(name, corpus)
        service.drain()
    for q, phrase in (('"common ground"', "common ground"), ('"common words"', "common words")):
        matching = [d for d in corpus if phrase in d["title"] or phrase in d["body"]]
        assert len(matching) > 10
        ids, pages = page_all(service, name=name, q=q)
        assert sorted(ids) == sorted(d["id"] for d in matching), q  # complete, no duplicates
        assert all(p["ranking"] == "tiered" for p in pages)
        in_title = [d["id"] for d in matching if phrase in d["title"]]
        assert ids == sorted(in_title) + sorted(set(ids) - set(in_title)), q


def test_facets_count_the_whole_result_set_exactly(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    result = service.search("docs", q="common", facets="kind")
    matching = [d for d in corpus if "common" in d["title"] or "common" in d["body"]]
    assert result["total"] == len(matching) and result["total_relation"] == "eq"
    assert result["ranking"] == "tiered"  # an exact total, but more matches than are ranked
    counts = {f["value"]: f["count"] for f in result["facets"]["kind"]}
    assert counts == {k: sum(1 for d in matching if d["kind"] == k) for k in ("even", "odd")}
    # The page comes out of the facet statement; it is the page a search without facets
    # gives (top tier first, each tier in id order), and its cursor continues it.
    for params in ({"q": "common"}, {"q": "common", "filter": "kind:odd"}):
        plain = service.search("docs", limit=7, **params)
        faceted = service.search("docs", limit=7, facets="kind", **params)
        assert [h["id"] for h in faceted["hits"]] == [h["id"] for h in plain["hits"]]
        assert [h["score"] for h in faceted["hits"]] == [h["score"] for h in plain["hits"]]
        rest, _ = page_all(service, cursor=faceted["next_cursor"], facets="kind", **params)
        assert sorted([h["id"] for h in faceted["hits"]] + rest) == sorted(
            d["id"] for d in matching if "filter" not in params or d["kind"] == "odd"
        )


def test_a_cursor_keeps_its_mode_when_the_result_set_grows(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    first = service.search("docs", q="rare", limit=3)  # 20 matches > 10: tiered
    assert first["total_relation"] == "gte"
    service.client.delete("/collections/docs/documents/d000")
    service.drain()
    rest, _ = page_all(service, q="rare", cursor=first["next_cursor"])
    seen = [h["id"] for h in first["hits"]] + rest
    expected = {d["id"] for d in corpus if "rare" in d["body"]}
    assert len(seen) == len(set(seen))
    assert set(seen) | {"d000"} == expected


def test_highlights_keep_short_fields_whole_and_escape_html(service: Service) -> None:
    service.create_collection("docs", FIELDS)
    long_body = "filler words " * 40 + "the <b>needle</b> & more " + "tail words " * 40
    service.add("docs", [{"id": "h1", "title": "A needle in the hay", "body": long_body}])
    service.drain()
    highlights = service.search("docs", q="needle")["hits"][0]["highlights"]
    assert highlights["title"] == ["A <mark>needle</mark> in the hay"]
    (snippet,) = highlights["body"]
    assert "&lt;b&gt;<mark>needle</mark>&lt;/b&gt; &amp; more" in snippet
    assert len(snippet) < len(long_body) / 2  # a fragment, not the whole text


def test_highlights_read_the_first_characters_of_a_long_field(service: Service) -> None:
    service.create_collection("docs", FIELDS)
    filler = "filler words " * (HIGHLIGHT_MAX_CHARS // 10)  # past the highlighted part
    service.add(
        "docs",
        [
            {"id": "early", "title": "Early", "body": "a marmot " + filler},
            {"id": "late", "title": "Late", "body": filler + " a marmot"},
        ],
    )
    service.drain()
    hits = {h["id"]: h for h in service.search("docs", q="marmot")["hits"]}
    assert set(hits) == {"early", "late"}  # both found: the limit is the highlights' only
    assert "<mark>marmot</mark>" in hits["early"]["highlights"]["body"][0]
    assert "marmot" not in "".join(hits["late"]["highlights"].get("body", []))


def test_searches_leave_no_transaction_or_setting_on_pooled_connections(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    """Searches run in autocommit on their own pool; the tier walk switches bitmap scans
    off for one statement and must switch them back, or every later query on that pooled
    connection would plan without them. Nor are searches prepared on the server (where
    PostgreSQL could give them a generic plan): psycopg would from the fifth run on."""
    backend = service.backend
    assert isinstance(backend, PostgresBackend)
    for _ in range(8):  # tiered pages, walked with bitmap scans off
        assert service.search("docs", q="common")["ranking"] == "tiered"
    pool = backend.search_engine.pool
    assert pool.checkedin() >= 1
    with backend.search_engine.connect() as conn:  # the connection the searches used
        for setting in WALK_SETTINGS:
            name, walk_value = setting.split(" = ")
            shown = conn.execute(text(f"SHOW {name}")).scalar_one()
            assert (
                shown != walk_value
                and shown
                == conn.execute(
                    text(f"SELECT reset_val FROM pg_settings WHERE name = '{name}'")
                ).scalar_one()
            )
        prepared = "SELECT count(*) FROM pg_prepared_statements"
        assert conn.execute(text(prepared)).scalar_one() == 0
        # Nor JIT-compiled, which a PostgreSQL built with LLVM does (jit is on by default)
        # for every run of a statement it estimates dear.
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
        assert conn.connection.dbapi_connection.info.transaction_status.name == "IDLE"  # type: ignore[union-attr]


def test_search_survives_its_pooled_connections_being_killed(
    service: Service, corpus: list[dict[str, Any]], engine: Engine
) -> None:
    """A server restart kills pooled connections. The search pool has no pre-ping (a round
    trip per search): the search that finds a dead connection retries once, on a fresh one."""
    before = service.search("docs", q="ground rare")
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'docuseek-search'"
            )
        ).scalar_one()
    assert killed >= 1  # a real fault: the pooled search connections are gone
    after = service.search("docs", q="ground rare")  # 200, not 503
    assert [h["id"] for h in after["hits"]] == [h["id"] for h in before["hits"]]


def test_a_search_the_server_cancels_is_a_503_and_the_next_one_succeeds(
    service: Service, corpus: list[dict[str, Any]], engine: Engine
) -> None:
    """A statement PostgreSQL cancels (statement_timeout, here while another session
    holds a lock on the index table) is a search the backend could not answer: 503 with
    a JSON body, not a 500, and the pooled connection serves the next search."""
    backend = service.backend
    assert isinstance(backend, PostgresBackend)
    before = service.search("docs", q="ground rare")  # the pool now holds one connection
    collection = collections.load_cached(engine, "docs")
    table = table_name(collection, collection.generation)
    with backend.search_engine.connect() as conn:  # the connection the searches use
        conn.execute(text("SET statement_timeout = '300ms'"))
    with engine.connect() as locker:
        locker.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        response = service.client.get("/collections/docs/search", params={"q": "ground rare"})
        locker.rollback()
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "search_unavailable" and "unavailable" in error["message"]
    assert "statement timeout" not in error["message"]  # the driver's text stays in the log
    with backend.search_engine.connect() as conn:
        conn.execute(text("RESET statement_timeout"))
    after = service.search("docs", q="ground rare")
    assert [h["id"] for h in after["hits"]] == [h["id"] for h in before["hits"]]


def test_pages_read_documents_from_the_system_of_record(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    """The index keeps no copy of the documents: a page shows each hit as `documents`
    holds it now. Before the worker catches up, an updated hit shows its new body and a
    deleted one is left out, while the page still says that more follow."""
    first = service.search("docs", q="ground rare", limit=2)
    assert len(first["hits"]) == 2 and first["next_cursor"]
    updated, deleted = (h["id"] for h in first["hits"])
    service.add("docs", [{"id": updated, "title": "common ground renamed", "body": "rare words"}])
    response = service.client.delete(f"/collections/docs/documents/{deleted}")
    assert response.status_code == 202, response.text
    # No drain: the index still has both rows as they were.
    again = service.search("docs", q="ground rare", limit=2)
    assert [h["id"] for h in again["hits"]] == [updated]
    assert again["hits"][0]["document"]["title"] == "common ground renamed"
    assert again["next_cursor"]  # the page held two rows; the third is still to come
    rest, _ = page_all(service, q="ground rare")
    assert deleted not in rest and updated in rest


def test_exact_limit_boundary(service: Service) -> None:
    """exact_limit (10 here) matches are ranked exactly; one more and the page is tiered.
    The first page counts and ranks in one statement: the count decides both."""
    service.create_collection("edge", FIELDS)
    service.add("edge", [{"id": f"e{i:02d}", "body": f"boundary {i}"} for i in range(11)])
    service.drain()
    over = service.search("edge", q="boundary")
    assert (over["total"], over["total_relation"], over["ranking"]) == (10, "gte", "tiered")
    assert len(over["hits"]) == 11 and over["next_cursor"] is None
    response = service.client.delete("/collections/edge/documents/e05")
    assert response.status_code == 202
    service.drain()
    at = service.search("edge", q="boundary")
    assert (at["total"], at["total_relation"], at["ranking"]) == (10, "eq", "exact")
    assert len(at["hits"]) == 10 and at["next_cursor"] is None
    assert "e05" not in [h["id"] for h in at["hits"]]


@pytest.mark.parametrize("q", ["common -rare", '"common"-rare', "common (-rare)"])
def test_a_negated_word_excludes_its_documents_from_every_tier(
    service: Service, corpus: list[dict[str, Any]], q: str
) -> None:
    """`common -rare`: a title holding `common` is in the top tier only if no field holds
    `rare` (d000, d012, ... have "common ground" titles and "rare words" bodies)."""
    expected = sorted(
        d["id"]
        for d in corpus
        if "common" in d["title"] + d["body"] and "rare" not in d["title"] + d["body"]
    )
    assert len(expected) > 10
    ids, pages = page_all(service, q=q)
    assert pages[0]["ranking"] == "tiered"
    assert sorted(ids) == expected
    with_facets = service.search("docs", q=q, facets="kind", limit=50)
    assert with_facets["total"] == len(expected) and with_facets["ranking"] == "tiered"
    assert sorted(h["id"] for h in with_facets["hits"]) == expected
