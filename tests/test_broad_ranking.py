"""PostgreSQL backend: a query matching more than PG_EXACT_LIMIT documents lists the
matches ts_rank rewards most first, ranked, and pages through every match exactly once."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from docuseek import collections
from docuseek.search.base import SearchBackend, SearchQuery
from docuseek.search.postgres import PostgresBackend, planner, tiers
from docuseek.search.postgres.layout import table_name
from tests.backends.postgres.proofs import rows_found
from tests.helpers import Service

FIELDS = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
    "kind": {"type": "keyword", "facet": True},
}


@pytest.fixture
def backend(engine: Engine) -> Iterator[SearchBackend]:
    pg_backend = PostgresBackend(engine, exact_limit=25)
    yield pg_backend
    pg_backend.close()


def make_corpus(n: int = 80) -> list[dict[str, Any]]:
    """Low ids hold the query words once, in the title: what a walk of the title tier in
    id order lists first. The last twenty repeat them, in varying amounts, where ts_rank
    rewards it."""
    docs = []
    for i in range(n):
        doc = {"id": f"b{i:03d}", "title": f"alpha beta tool {i}", "body": "plain words"}
        if i >= n - 20:
            r = i - (n - 20)
            doc["title"] = "alpha beta " * (1 + r % 3) + f"tool {i}"
            doc["body"] = "the alpha beta way " * (r % 5) + "gamma words"
        doc["kind"] = "even" if i % 2 == 0 else "odd"
        docs.append(doc)
    # Body-only matches: the lowest tier.
    docs += [
        {"id": f"c{i:03d}", "title": "other", "body": "alpha beta " * (i % 3 + 1), "kind": "odd"}
        for i in range(30)
    ]
    return docs


@pytest.fixture
def corpus(service: Service) -> list[dict[str, Any]]:
    docs = make_corpus()
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    return docs


def exact_ranked(engine: Engine, q: str, n: int) -> list[tuple[str, float]]:
    """The exact ts_rank order over every match, with the scores."""
    collection = collections.load_cached(engine, "docs")
    table = table_name(collection, collection.generation)
    rank = "ts_rank(tsv, websearch_to_tsquery('english', :q), 32)"
    sql = (
        f"SELECT id, {rank} FROM {table} WHERE live AND tsv @@ websearch_to_tsquery('english',"
        f" :q) ORDER BY {rank} DESC, id LIMIT :n"
    )
    with engine.connect() as conn:
        return [(row[0], float(row[1])) for row in conn.execute(text(sql), {"q": q, "n": n})]


def exact_top(engine: Engine, q: str, n: int) -> list[str]:
    """The exact ts_rank order over every match, as the issue defines the target."""
    return [doc_id for doc_id, _ in exact_ranked(engine, q, n)]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The impact levels a search sizes with a statement of their own (_level_size), in
    the order it does."""
    levels_counted: list[int] = []
    level_size = planner.Search._level_size

    def spy(self: planner.Search, levels: list[str], i: int, cap: int) -> int:
        levels_counted.append(i)
        return level_size(self, levels, i, cap)

    monkeypatch.setattr(planner.Search, "_level_size", spy)
    return levels_counted


def cursor_values(cursor: str) -> list[Any]:
    values: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["v"]
    return values


def page_all(service: Service, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = service.search("docs", **params, **({"cursor": cursor} if cursor else {}))
        pages.append(page)
        ids += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return ids, pages


@pytest.mark.parametrize("q", ["alpha", "beta", "alpha beta", '"alpha beta"'])
def test_a_broad_querys_first_page_is_the_exact_ts_rank_top(
    service: Service, engine: Engine, corpus: list[dict[str, Any]], q: str
) -> None:
    """The best-ranked documents have the highest ids: a tier walk in id order would list
    b000… first. The first page is ts_rank's own top 10 over all matches, in its order."""
    page = service.search("docs", q=q, limit=10)
    assert page["ranking"] == "tiered" and page["total_relation"] == "gte"
    expected = exact_top(engine, q, 10)
    assert "b000" not in expected  # the corpus does what it is built for
    assert [h["id"] for h in page["hits"]] == expected
    scores = [h["score"] for h in page["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_a_word_once_in_the_title_ranks_above_it_repeated_in_the_body(
    service: Service, engine: Engine, corpus: list[dict[str, Any]]
) -> None:
    """Under the filter the levels of title repetitions hold fewer than a page of rows, so
    the ranked tier would reach into the body's levels. The `b` documents hold the word
    in the title, most of them once (no impact token: it takes two positions); the `c`
    ones repeat it in the body only, which ts_rank rewards less: every title match comes
    first, the ones repeating it ranked."""
    page = service.search("docs", q="alpha", limit=10, filter="kind:odd", prefix="false")
    assert page["ranking"] == "tiered"
    kinds = {d["id"]: d["kind"] for d in corpus}
    expected = [i for i in exact_top(engine, "alpha", len(corpus)) if kinds[i] == "odd"][:10]
    assert all(i.startswith("b") for i in expected)  # the corpus does what it is built for
    hits = [h["id"] for h in page["hits"]]
    assert all(i.startswith("b") for i in hits)
    assert hits[:7] == expected[:7]  # the seven repeating it in the title, ranked


def test_several_words_once_in_the_title_rank_above_them_repeated_in_the_body(
    service: Service, engine: Engine
) -> None:
    """Words held once have no impact tokens, so the ranked tier of several words would be
    the rows repeating them, here in the body only, and the title matches, which ts_rank
    puts first, would follow them in id order. The widest level together with the
    top-field matches is few enough to rank (18 rows of exact_limit 25): the page is
    ts_rank's own top."""
    docs = [{"id": f"a{i:02d}", "title": "alpha beta", "body": "other"} for i in range(10)]
    docs += [
        {"id": f"r{i:02d}", "title": "other", "body": "alpha beta alpha beta gamma"}
        for i in range(8)
    ]
    docs += [{"id": f"o{i:02d}", "title": "other", "body": "alpha then beta"} for i in range(40)]
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    page = service.search("docs", q="alpha beta", limit=10, prefix="false")
    assert page["ranking"] == "tiered"
    expected = exact_top(engine, "alpha beta", 10)
    assert all(i.startswith("a") for i in expected)  # the corpus does what it is built for
    assert [h["id"] for h in page["hits"]] == expected


def filtered_corpus(service: Service) -> list[dict[str, Any]]:
    """`alpha` repeated most in the `x` documents, which a filter on kind `y` leaves out."""
    docs = [{"id": f"x{i:02d}", "body": "alpha " * 12, "kind": "x"} for i in range(10)]
    # Two to five times: impact levels below the `x` documents' (six and more).
    docs += [{"id": f"y{i:02d}", "body": "alpha " * (2 + i // 3), "kind": "y"} for i in range(12)]
    docs += [{"id": f"a{i:02d}", "body": "alpha once", "kind": "y"} for i in range(30)]
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    return docs


@pytest.mark.parametrize("probe_rows", [tiers.LEVEL_PROBE_ROWS, 3])
def test_a_filtered_broad_querys_first_page_is_the_exact_ts_rank_top(
    service: Service, engine: Engine, monkeypatch: pytest.MonkeyPatch, probe_rows: int
) -> None:
    """Under a filter the impact levels are sized by the rows that meet it (from the
    levels' own rows when those are few; at 3, all but the smallest level are counted
    through the filter's index instead). Sized by every row, the strictest level holding
    a page would be the `x` documents', which the filter leaves out, and the page would
    come from the `a` documents in id order."""
    monkeypatch.setattr(tiers, "LEVEL_PROBE_ROWS", probe_rows)
    docs = filtered_corpus(service)
    page = service.search("docs", q="alpha", limit=5, filter="kind:y", prefix="false")
    assert page["ranking"] == "tiered"
    kinds = {d["id"]: d["kind"] for d in docs}
    expected = [i for i in exact_top(engine, "alpha", len(docs)) if kinds[i] == "y"][:5]
    assert expected[0] == "y09"
    assert [h["id"] for h in page["hits"]] == expected


def test_a_filtered_one_word_walk_sizes_the_strictest_levels_in_one_statement(
    service: Service, engine: Engine, monkeypatch: pytest.MonkeyPatch, counted: list[int]
) -> None:
    """The first weight's strictest levels hold few rows: their sizes under the filter come
    from one read of the widest of them, not a count each, and pick the same ranked tier
    as counting them one by one does."""
    filtered_corpus(service)
    params = {"q": "alpha", "limit": 5, "filter": "kind:y", "prefix": "false"}
    batched = [h["id"] for h in service.search("docs", **params)["hits"]]
    assert counted and min(counted) > tiers.LEVEL_BATCH_ENDS[0]
    counted.clear()
    monkeypatch.setattr(tiers, "LEVEL_BATCH_ENDS", ())
    one_by_one = [h["id"] for h in service.search("docs", **params)["hits"]]
    assert min(counted) == 0
    assert batched == one_by_one


def test_a_filtered_one_word_level_of_many_rows_is_counted_and_ranked_at_once(
    service: Service, engine: Engine, monkeypatch: pytest.MonkeyPatch, counted: list[int]
) -> None:
    """A level holding more rows than LEVEL_PROBE_ROWS (3 here) is sized through the
    filter's index; when it holds a page it is the ranked tier, so the same statement
    ranks it: no ranking statement of its own, and the page is still ts_rank's top."""
    monkeypatch.setattr(tiers, "LEVEL_PROBE_ROWS", 3)
    monkeypatch.setattr(tiers, "LEVEL_BATCH_ENDS", ())
    ranked_levels: list[int] = []
    count_and_rank = planner.Search._count_and_rank_level

    def spy(self: planner.Search, levels: list[str], i: int, cap: int) -> Any:
        ranked_levels.append(i)
        return count_and_rank(self, levels, i, cap)

    monkeypatch.setattr(planner.Search, "_count_and_rank_level", spy)
    rows: list[str] = []
    run_rows = planner.Search._rows

    def statements(self: planner.Search, sql: str) -> Any:
        rows.append(sql)
        return run_rows(self, sql)

    monkeypatch.setattr(planner.Search, "_rows", statements)
    docs = filtered_corpus(service)
    page = service.search("docs", q="alpha", limit=5, filter="kind:y", prefix="false")
    kinds = {d["id"]: d["kind"] for d in docs}
    expected = [i for i in exact_top(engine, "alpha", len(docs)) if kinds[i] == "y"][:5]
    assert [h["id"] for h in page["hits"]] == expected
    assert ranked_levels and set(ranked_levels) <= set(counted)
    # The walk's statements: none ranks a level but the one that counts it too.
    assert not [sql for sql in rows if "ts_rank" in sql and "count(*)" not in sql]


def test_several_words_do_not_count_a_level_the_planner_expects_over_the_cap(
    service: Service,
    corpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    counted: list[int],
) -> None:
    """The bisection for the widest level within exact_limit takes a level the planner
    expects to hold more as too wide without counting its rows (the dearest count); it
    counts the ones expected within the limit. The estimates are stood in for here, as a
    small table's are whatever its statistics say."""
    level_count: list[int] = []

    def estimate(self: planner.Search, where: str) -> float:
        """Over the cap from the middle level on, within it below."""
        levels = self._impact_levels()
        level_count.append(len(levels))
        level = next(i for i, condition in enumerate(levels) if where.endswith(condition))
        return 1e6 if level >= len(levels) // 2 else 1.0

    monkeypatch.setattr(planner.Search, "_estimated_rows", estimate)
    page = service.search("docs", q="alpha beta", limit=10)
    assert page["ranking"] == "tiered"
    assert counted and all(i < level_count[0] // 2 for i in counted)


def test_several_words_widest_level_within_the_cap_is_counted_and_ranked_at_once(
    service: Service, engine: Engine, monkeypatch: pytest.MonkeyPatch, counted: list[int]
) -> None:
    """When the planner expects the widest level to fit the cap (stood in for here, as a
    small table's estimates are whatever its statistics say), one statement counts it and
    ranks it: no count of its own, and the page is still ts_rank's exact top. The widest
    level holds the 12 documents repeating both words, of 42 matches."""
    docs = [
        {"id": f"r{i:02d}", "title": "other", "body": "alpha beta " * (2 + i % 4)}
        for i in range(12)
    ]
    docs += [{"id": f"o{i:02d}", "title": "other", "body": "alpha and beta"} for i in range(30)]
    service.create_collection("docs", FIELDS)
    service.add("docs", docs)
    service.drain()
    monkeypatch.setattr(planner.Search, "_estimated_rows", lambda self, where: 1.0)
    page = service.search("docs", q="alpha beta", limit=10, prefix="false")
    assert page["ranking"] == "tiered"
    assert [h["id"] for h in page["hits"]] == exact_top(engine, "alpha beta", 10)
    assert counted == []


@pytest.mark.parametrize("q", ["alpha beta", "beta alpha", "alpha gamma"])
def test_two_words_are_proven_broad_by_the_rows_holding_them_side_by_side(
    service: Service, engine: Engine, corpus: list[dict[str, Any]], q: str
) -> None:
    """The first page's attempt first counts the rows holding the two words next to each
    other, in either order, through the pair index: the rows it finds are exactly those,
    as the index's own pairs are made (`alpha gamma` never stand together), and when they
    are more than exact_limit the search is tiered as when every match was counted."""
    query = SearchQuery(q=q, limit=10, prefix=False, typo=False)
    _, found = rows_found(engine, "docs", query, 25, planner.Search._pair_proof)
    first, second = q.split()
    together = re.compile(rf"\b({first} {second}|{second} {first})\b")
    assert found == {d["id"] for d in corpus if together.search(f"{d['title']} {d['body']}")}
    page = service.search("docs", q=q, limit=10, prefix="false")
    assert (len(found) > 25) == (page["total_relation"] == "gte")
    assert page["ranking"] == ("tiered" if len(found) > 25 else "exact")


@pytest.mark.parametrize(
    "params",
    [
        {"q": "alpha"},
        {"q": "alpha beta", "limit": 3},
        {"q": "alpha", "filter": "kind:odd"},
        {"q": "alpha -plain"},
        {"q": "beta", "facets": "kind", "limit": 4},
    ],
)
def test_paging_a_broad_query_returns_every_match_once(
    service: Service, corpus: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    ids, pages = page_all(service, **{"limit": 7, **params})
    assert all(p["ranking"] == "tiered" for p in pages)
    kind = params.get("filter", "kind:").split(":")[1]
    negated = "-plain" in params["q"]
    matching = [
        d["id"]
        for d in corpus
        if (not kind or d["kind"] == kind) and not (negated and "plain" in d["body"])
    ]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(matching)
    # A document repeating the words in the title (the highest ids) comes first.
    assert int(ids[0][1:]) >= 60


@pytest.mark.parametrize("phrase_rows", [tiers.PHRASE_RANKED_ROWS, 6])
def test_a_phrases_ranked_tier_is_capped_and_paging_still_returns_every_match_once(
    service: Service,
    engine: Engine,
    corpus: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    phrase_rows: int,
) -> None:
    """A phrase's ranked tier holds at most PHRASE_RANKED_ROWS rows (here 6 of the 20
    documents repeating the phrase, or all of them): the first page is as good as ts_rank's
    exact top all the same, and the rest of the matches follow, each once."""
    monkeypatch.setattr(tiers, "PHRASE_RANKED_ROWS", phrase_rows)
    q = '"alpha beta"'
    ids, pages = page_all(service, q=q, limit=4)
    assert all(p["ranking"] == "tiered" for p in pages)
    matching = [d["id"] for d in corpus if "alpha beta" in d["title"] + " " + d["body"]]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(matching)
    # ts_rank ties most of them (it hardly counts a phrase's repetitions): the first page
    # scores as the exact top does, though ties may be others than the lowest ids.
    fourth = exact_ranked(engine, q, 4)[-1][1]
    assert all(h["score"] >= fourth - 1e-6 for h in pages[0]["hits"])
    # The cursor after the second page (8 rows) is still in the ranked tier only when the
    # tier may hold more than 6 rows.
    tier = cursor_values(pages[1]["next_cursor"])[1]
    assert (tier == tiers.RANKED_TIER) == (phrase_rows > 8)


def test_a_broad_query_cursor_is_stable_under_concurrent_writes(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    """Between every two pages, documents are added (some that would rank first, some
    with low ids), and others deleted: no page repeats a document, and every document
    that was there all along is listed exactly once."""
    ids: list[str] = []
    cursor = None
    deleted: set[str] = set()
    for round_ in range(100):
        params: dict[str, Any] = {"q": "alpha", "limit": 6}
        page = service.search("docs", **params, **({"cursor": cursor} if cursor else {}))
        ids += [h["id"] for h in page["hits"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
        new = [
            {"id": f"a{round_:03d}", "title": "alpha", "body": "alpha", "kind": "odd"},
            {"id": f"z{round_:03d}", "title": "alpha alpha", "body": "alpha " * 4},
        ]
        service.add("docs", new)
        victim = corpus[(round_ * 7) % len(corpus)]["id"]
        service.client.delete(f"/collections/docs/documents/{victim}").raise_for_status()
        deleted.add(victim)
        service.drain()
    assert cursor is None
    assert len(ids) == len(set(ids))
    assert {d["id"] for d in corpus} - deleted <= set(ids)


def test_a_tiered_cursor_for_another_sort_is_a_422(
    service: Service, corpus: list[dict[str, Any]]
) -> None:
    first = service.search("docs", q="alpha", limit=3)
    other = service.client.get(
        "/collections/docs/search",
        params={"q": "alpha", "sort": "_id", "cursor": first["next_cursor"]},
    )
    assert other.status_code == 422 and other.json()["error"]["code"]


@pytest.mark.parametrize(
    "values",
    [
        ["t", 2, "x", 0.5, "b001"],  # level not a number
        ["t", 2, 0, "high", "b001"],  # score not a number
        ["t", 1, 0, 0.5, "b001"],  # a score outside the ranked tier
        ["t", 7, 0, None, "b001"],  # no such tier
        ["t", 2, 99, 0.5, "b001"],  # no such level
        ["t", True, "b001"],  # the cursor of the tier walk before ranked tiers
    ],
)
def test_a_tampered_tiered_cursor_is_a_422(
    service: Service, corpus: list[dict[str, Any]], values: list[Any]
) -> None:
    first = service.search("docs", q="alpha", limit=3)
    padded = first["next_cursor"] + "=" * (-len(first["next_cursor"]) % 4)
    payload = json.loads(base64.urlsafe_b64decode(padded))
    payload["v"] = values
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    response = service.client.get(
        "/collections/docs/search", params={"q": "alpha", "limit": 3, "cursor": cursor}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]


@pytest.mark.parametrize("q", ["alpha", "alpha or gamma", "alpha or the", "alpha -plain"])
def test_asking_for_facets_never_changes_a_broad_querys_hits(
    service: Service, corpus: list[dict[str, Any]], q: str
) -> None:
    """With facets the first tiered page may come from the facets' own statement, but only
    when no ranked tier would pick it (`alpha or the` parses as an OR, yet PostgreSQL
    drops the stop word and ranks `alpha` by its impact levels)."""
    plain = service.search("docs", q=q, limit=10, prefix="false")
    faceted = service.search("docs", q=q, limit=10, prefix="false", facets="kind")
    assert plain["ranking"] == faceted["ranking"] == "tiered"
    assert [h["id"] for h in faceted["hits"]] == [h["id"] for h in plain["hits"]]


def test_a_faceted_search_learns_the_parsed_query_from_its_facets_statement(
    service: Service, corpus: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiered search needs the query as PostgreSQL parses it (for its impact levels):
    the facets statement brings it along, where a statement of its own cost a round trip."""
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def capture(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        statements.append(str(query))
        return execute(cursor, query, params, **kwargs)

    plain = service.search("docs", q="alpha", limit=10, prefix="false")
    monkeypatch.setattr(psycopg.Cursor, "execute", capture)
    faceted = service.search("docs", q="alpha", limit=10, prefix="false", facets="kind")
    assert faceted["ranking"] == "tiered"
    assert [h["id"] for h in faceted["hits"]] == [h["id"] for h in plain["hits"]]
    assert statements
    assert not [s for s in statements if s.startswith("SELECT to_tsquery")]
