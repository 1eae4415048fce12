"""Both backends, side by side, on one generated corpus: same membership, facets and paging.

Ranking may differ between backends; which documents match may not. The corpus mixes
word forms that only stemming relates (run/running/runs), stop words, keyword arrays,
missing values and HTML metacharacters.

Its words stem alike under Porter and Porter2 (Snowball English): osmem-server indexes
with Porter whatever the analyzer says, while PostgreSQL and OpenSearch use Porter2, so a
word like "quickly" (quickli / quick) would test osmem-server rather than Docuseek.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from docuseek import collections, ingest
from docuseek.schema import Collection, CollectionSchema, validate_document
from docuseek.search.base import FieldFilter, IndexOp, SearchBackend, SearchQuery, SortKey
from docuseek.search.opensearch import OpenSearchBackend
from docuseek.search.postgres import PostgresBackend
from tests.conformance.opensearch_target import OpenSearchTarget

FIELDS: dict[str, Any] = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text", "weight": "C"},
    "section": {"type": "keyword", "facet": True},
    "tags": {"type": "keyword", "facet": True},
    "year": {"type": "integer", "facet": True},
    "price": {"type": "float"},
    "in_print": {"type": "boolean", "facet": True},
    "published": {"type": "date"},
}
WORDS = (  # noqa: SIM905
    "run running runs runner connect connected connection connections index indexes"
    " indexing search searching searched quick fox foxes dog dogs lazy database databases"
    " engine engines happy happiness library libraries the and of we is our over with"
).split()
SECTIONS = ["animals", "tech", "home", "science", "misc"]
TAGS = ["red", "green", "blue", "amber", "teal", "violet"]
QUERIES = [
    "fox", "foxes", "running", "runs", "connection", "indexing", "libraries", "happiness",
    "quick fox", "lazy dogs", "database engine", '"quick fox"', '"running dogs"',
    '"lazy dog"', "search -engine", "-fox", "fox OR database", "fox or database",
    "fox database OR engine -lazy", "the fox", "we run", "the", '"fox and dog"',
    "fox -dog OR library", "connected & searching", "dog, fox!",
]  # fmt: skip


def make_corpus(n: int = 240, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for i in range(n):
        doc: dict[str, Any] = {
            "id": f"d{i:04d}",
            "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))),
            # "note" first: PostgreSQL joins fields into one tsvector, so a phrase could
            # otherwise span the end of the title and the start of the body.
            "body": "note " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))),
            "section": rng.choice(SECTIONS),
            "in_print": rng.random() < 0.6,
            "published": f"{rng.randint(1990, 2024)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
        }
        if rng.random() < 0.85:
            doc["year"] = rng.randint(1990, 2024)
        if rng.random() < 0.9:
            doc["price"] = round(rng.uniform(1, 100), 2)
        if rng.random() < 0.8:
            doc["tags"] = rng.sample(TAGS, rng.randint(1, 3))
        if i % 37 == 0:
            doc["body"] += " <b>fox</b> & co"
        docs.append(doc)
    return docs


@pytest.fixture
def both(engine: Engine, opensearch: OpenSearchTarget) -> Iterator[list[SearchBackend]]:
    with opensearch.backend() as os_backend:
        pg_backend = PostgresBackend(engine)
        yield [pg_backend, os_backend]
        pg_backend.close()


@pytest.fixture
def indexed(
    engine: Engine, both: list[SearchBackend]
) -> tuple[Collection, list[SearchBackend], list[Any]]:
    """The corpus stored as the api stores it (PostgreSQL's backend reads the page's
    documents from there), then applied to each backend directly, side by side."""
    pg_backend = both[0]
    collection, _ = collections.put(
        engine, pg_backend, "equiv", CollectionSchema.model_validate({"fields": FIELDS})
    )
    corpus = make_corpus()
    ingest.upsert_documents(engine, collection.name, corpus)
    docs = [validate_document(collection, i, d) for i, d in enumerate(corpus)]
    ops = [IndexOp(d["id"], i + 1, d) for i, d in enumerate(docs)]
    for backend in both:
        backend.ensure_collection(collection, 1)
        assert backend.index_batch(collection, 1, ops).failed == {}
    return collection, both, docs


def members(backend: SearchBackend, collection: Collection, query: SearchQuery) -> list[str]:
    """Every id of the result set, paging through it with the cursor (a cursor that
    never ends fails, where it would have hung the test)."""
    seen: list[str] = []
    after = None
    for _ in range(len(make_corpus()) + 1):
        result = backend.search(collection, SearchQuery(**{**query.__dict__, "after": after}))
        seen += [h.id for h in result.hits]
        if not result.has_more:
            return seen
        after = tuple(result.hits[-1].sort_values)
    raise AssertionError(f"{backend.name}: the cursor pages on past every document: {query}")


def test_text_queries_match_the_same_documents(indexed: Any) -> None:
    collection, (pg, os_), _ = indexed
    for q in QUERIES:
        query = SearchQuery(q=q, limit=1000, highlight=False)
        pg_result, os_result = pg.search(collection, query), os_.search(collection, query)
        assert {h.id for h in pg_result.hits} == {h.id for h in os_result.hits}, q
        assert pg_result.total == os_result.total == len(pg_result.hits), q
    assert pg.search(collection, SearchQuery(q="fox")).total > 0  # the corpus is not empty


FILTERS: list[tuple[FieldFilter, ...]] = [
    (FieldFilter("section", values=("tech",)),),
    (FieldFilter("section", values=("tech", "home")),),
    (FieldFilter("tags", values=("red",)),),
    (FieldFilter("tags", values=("red", "teal")), FieldFilter("section", values=("misc",))),
    (FieldFilter("year", gte=2000, lt=2010),),
    (FieldFilter("year", values=(1999, 2001)),),
    (FieldFilter("price", gt=20.5, lte=60.25),),
    (FieldFilter("in_print", values=(False,)),),
    (FieldFilter("published", gte="2005-01-01T00:00:00.000000Z"),),
    (FieldFilter("published", lt="2000-06-01T00:00:00.000000Z", gt="1995-01-01T00:00:00.000000Z"),),
]


def test_filters_and_facets_agree(indexed: Any) -> None:
    collection, (pg, os_), _ = indexed
    facets = ("section", "tags", "year", "in_print")
    for q in ("", "fox", "running -lazy"):
        for filters in [(), *FILTERS]:
            query = SearchQuery(q=q, filters=filters, facets=facets, limit=1000, facet_size=50)
            a, b = pg.search(collection, query), os_.search(collection, query)
            assert {h.id for h in a.hits} == {h.id for h in b.hits}, (q, filters)
            assert a.total == b.total, (q, filters)
            for name in facets:
                assert dict(a.facets[name]) == dict(b.facets[name]), (q, filters, name)


def test_facets_keep_the_top_values_by_count(indexed: Any) -> None:
    collection, (pg, os_), _ = indexed
    query = SearchQuery(facets=("tags",), facet_size=3, limit=1)
    a, b = pg.search(collection, query), os_.search(collection, query)
    assert len(b.facets["tags"]) == 3
    assert [n for _, n in a.facets["tags"]] == [n for _, n in b.facets["tags"]]


@pytest.mark.parametrize(
    "q, sort",
    [
        ("", ()),
        ("fox OR dog", ()),
        ("", (SortKey("year", True),)),
        ("lazy", (SortKey("price"),)),
        ("", (SortKey("published", True), SortKey("section"))),
        ("", (SortKey("in_print"), SortKey("year"))),
    ],
)
def test_cursor_paging_is_complete_without_duplicates(
    indexed: Any, q: str, sort: tuple[SortKey, ...]
) -> None:
    collection, backends, _ = indexed
    pages: list[list[str]] = []
    for backend in backends:
        seen = members(backend, collection, SearchQuery(q=q, sort=sort, limit=7))
        assert len(seen) == len(set(seen)), backend.name
        pages.append(seen)
    assert set(pages[0]) == set(pages[1])
    if sort:  # field sorts (ties broken by id) give one order on both backends
        assert pages[0] == pages[1]


@st.composite
def generated_queries(draw: st.DrawFn) -> str:
    """Up to four of the corpus's words, each as it is, with one typo (deleted, replaced,
    inserted or swapped letters, never the first), negated, or cut short when last; now
    and then two of them quoted as a phrase, or an OR between them."""
    parts: list[str] = []
    count = draw(st.integers(1, 4))
    for k in range(count):
        word = draw(st.sampled_from(WORDS))
        form = draw(st.sampled_from(["as is", "typo", "negated", "cut"]))
        if form == "typo" and len(word) >= 5:
            at = draw(st.integers(1, len(word) - 2))
            letter = draw(st.sampled_from("aeiorstx"))
            word = draw(
                st.sampled_from(
                    [
                        word[:at] + word[at + 1 :],
                        word[:at] + letter + word[at + 1 :],
                        word[:at] + letter + word[at:],
                        word[:at] + word[at + 1] + word[at] + word[at + 2 :],
                    ]
                )
            )
        elif form == "negated":
            word = "-" + word
        elif form == "cut" and k == count - 1:
            word = word[: draw(st.integers(1, len(word)))]
        parts.append(word)
    if count >= 2 and draw(st.booleans()):
        at = draw(st.integers(0, count - 2))
        parts[at : at + 2] = [f'"{parts[at].lstrip("-")} {parts[at + 1].lstrip("-")}"']
    elif count >= 2 and draw(st.booleans()):
        parts.insert(draw(st.integers(1, count - 1)), "OR")
    return " ".join(parts)


@pytest.fixture
def tiered(engine: Engine) -> Iterator[SearchBackend]:
    """PostgreSQL ranking at most 10 matches exactly: most generated queries are tiered."""
    pg_backend = PostgresBackend(engine, exact_limit=10)
    yield pg_backend
    pg_backend.close()


@given(q=generated_queries())
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_generated_queries_page_through_every_match_once(
    indexed: Any, tiered: SearchBackend, q: str
) -> None:
    """Typos, prefixes, negations, phrases and OR, paged with the cursor on each backend
    (and on PostgreSQL's tiers): every match once. Without typos, both backends match
    the same documents; with them they may not (PostgreSQL matches what a misspelled
    word's corrections stem to, OpenSearch the words within the typos and their stems)."""
    collection, backends, _ = indexed
    for backend in [*backends, tiered]:
        everything = backend.search(collection, SearchQuery(q=q, limit=1000, highlight=False))
        paged = members(backend, collection, SearchQuery(q=q, limit=7, highlight=False))
        assert len(paged) == len(set(paged)) == len(everything.hits), (backend.name, q)
        assert set(paged) == {h.id for h in everything.hits}, (backend.name, q)
        assert everything.total == len(paged) or not everything.total_exact, (backend.name, q)
    as_typed = SearchQuery(q=q, limit=1000, highlight=False, typo=False)
    pg_hits, os_hits = (backend.search(collection, as_typed).hits for backend in backends)
    assert {h.id for h in pg_hits} == {h.id for h in os_hits}, q


def test_highlights_mark_matches_and_escape_html(indexed: Any) -> None:
    collection, backends, _ = indexed
    for backend in backends:
        result = backend.search(collection, SearchQuery(q="fox", limit=1000))
        assert result.hits
        for hit in result.hits:
            snippets = [s for values in hit.highlights.values() for s in values]
            assert snippets and all("<mark>" in s for s in snippets), (backend.name, hit.id)
            assert "<b>" not in "".join(snippets), backend.name
        escaped = [h for h in result.hits if "<b>" in h.document["body"]]
        assert escaped and any("&lt;b&gt;" in s for h in escaped for s in h.highlights["body"])


def test_versions_make_writes_idempotent_and_ordered(indexed: Any) -> None:
    collection, backends, docs = indexed
    first, second = docs[0], docs[1]
    newer = {**first, "title": "zebra"}
    for backend in backends:
        # An older version arriving late changes nothing; a delete keeps its version.
        backend.index_batch(collection, 1, [IndexOp(first["id"], 5000, newer)])
        backend.index_batch(collection, 1, [IndexOp(first["id"], 1, first)])
        backend.index_batch(collection, 1, [IndexOp(second["id"], 5001, None)])
        backend.index_batch(collection, 1, [IndexOp(second["id"], 2, second)])
        assert [h.id for h in backend.search(collection, SearchQuery(q="zebra")).hits] == [
            first["id"]
        ]
        assert backend.count(collection) == len(docs) - 1, backend.name
        versions = dict(backend.iter_versions(collection))
        assert versions[first["id"]] == 5000 and second["id"] not in versions


def test_bad_documents_fail_alone(indexed: Any) -> None:
    collection, backends, _ = indexed
    os_backend = next(b for b in backends if isinstance(b, OpenSearchBackend))
    bad = {"id": "bad", "year": "not a number"}  # skipped validation: the engine rejects it
    good = {"id": "good", "title": "fine"}
    result = os_backend.index_batch(
        collection, 1, [IndexOp("bad", 9000, bad), IndexOp("good", 9001, good)]
    )
    assert list(result.failed) == ["bad"] and "year" in result.failed["bad"]
    assert [h.id for h in os_backend.search(collection, SearchQuery(q="fine")).hits] == ["good"]


def test_keyword_lists_and_mixed_case_sort_alike_on_both_backends(
    engine: Engine, indexed: Any
) -> None:
    # A list sorts by its smallest value ascending and its largest descending, and text
    # in byte order: PostgreSQL sorted a list by its first value, which OpenSearch cannot
    # know (its doc values are sorted).
    collection, backends, _ = indexed
    values = {
        "zb": ["z", "b"], "c": ["c"], "ay": ["a", "y"], "upper": ["B"], "accent": ["é"],
        "none": None,
    }  # fmt: skip
    docs = [{"id": doc_id, "title": "sortable", "tags": tags} for doc_id, tags in values.items()]
    docs = [{k: v for k, v in d.items() if v is not None} for d in docs]
    ingest.upsert_documents(engine, collection.name, docs)
    ops = [
        IndexOp(d["id"], 1000 + i, validate_document(collection, i, d)) for i, d in enumerate(docs)
    ]
    for backend in backends:
        assert backend.index_batch(collection, 1, ops).failed == {}
    for descending, expected in (
        (False, ["upper", "ay", "zb", "c", "accent", "none"]),  # B < a < b < c < é
        (True, ["accent", "zb", "ay", "c", "upper", "none"]),  # é > z > y > c > B
    ):
        for backend in backends:
            query = SearchQuery(q="sortable", sort=(SortKey("tags", descending),), limit=2)
            assert members(backend, collection, query) == expected, (backend.name, descending)
    # A range on a list holds a document when one of its values is within every bound.
    for bounds, expected_ids in (
        ({"lte": "c"}, {"upper", "ay", "zb", "c"}),
        ({"gte": "c"}, {"zb", "ay", "c", "accent"}),
        ({"gt": "a", "lt": "c"}, {"zb"}),
        ({"lt": "a"}, {"upper"}),
    ):
        for backend in backends:
            flt = FieldFilter("tags", **bounds)
            query = SearchQuery(q="sortable", filters=(flt,), limit=100)
            found = {h.id for h in backend.search(collection, query).hits}
            assert found == expected_ids, (backend.name, bounds)
