"""End to end over HTTP: collection → documents → task → search, update and delete, on
every backend (see conftest.py)."""

from __future__ import annotations

import random
import string
from typing import Any

from tests.helpers import BOOK_FIELDS, Service

BOOKS: list[dict[str, Any]] = [
    {
        "id": "b1",
        "title": "The quick brown fox",
        "body": "A fox jumps over the lazy dog.",
        "section": "animals",
        "tags": ["fox", "dog"],
        "year": 1999,
        "price": 9.5,
        "in_print": True,
        "published": "1999-03-01",
    },
    {
        "id": "b2",
        "title": "Lazy afternoons",
        "body": "Cats sleep all day in the sun.",
        "section": "animals",
        "tags": ["cat"],
        "year": 2005,
        "price": 12.0,
        "in_print": False,
        "published": "2005-06-15T10:00:00Z",
    },
    {
        "id": "b3",
        "title": "Systems programming in Rust",
        "body": "Ownership, borrowing and lazy iterators.",
        "section": "tech",
        "tags": ["rust"],
        "year": 2018,
        "price": 39.99,
        "in_print": True,
        "published": "2018-01-01",
    },
    {
        "id": "b4",
        "title": "PostgreSQL internals",
        "body": "Full text search with tsvector and GIN.",
        "section": "tech",
        "tags": ["postgres", "search"],
        "year": 2021,
        "price": 45.0,
        "in_print": True,
        "published": "2021-09-30",
    },
    {
        "id": "b5",
        "title": "Gardening for the lazy",
        "body": "Plants that survive neglect.",
        "section": "home",
        "year": 2010,
        "price": 15.0,
        "in_print": True,
        "published": "2010-05-05",
    },
]


def ids(result: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in result["hits"]]


def setup_books(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    task_id = service.add("books", BOOKS)
    assert service.task(task_id)["status"] == "enqueued"
    service.drain()
    task = service.task(task_id)
    assert task["status"] == "succeeded", task
    assert task["details"]["indexed"] == len(BOOKS)
    assert task["started_at"] <= task["finished_at"]


def test_documents_become_searchable_with_highlights_and_ranking(service: Service) -> None:
    setup_books(service)
    result = service.search("books", q="lazy")
    assert set(ids(result)) == {"b1", "b2", "b3", "b5"}
    assert result["total"] == 4
    # Title matches (weight A) rank above body-only matches.
    assert set(ids(result)[:2]) == {"b2", "b5"}
    top = result["hits"][0]
    assert "<mark>" in top["highlights"]["title"][0]
    assert top["document"]["id"] == top["id"]
    assert result["took_ms"] >= 0


def test_web_search_syntax(service: Service) -> None:
    setup_books(service)
    assert ids(service.search("books", q='"lazy dog"')) == ["b1"]
    assert set(ids(service.search("books", q="lazy -fox"))) == {"b2", "b3", "b5"}
    assert set(ids(service.search("books", q="rust OR postgresql"))) == {"b3", "b4"}


def test_phrases_do_not_span_two_fields(service: Service) -> None:
    """PostgreSQL joins the fields into one tsvector; without a gap between them, the end
    of one field and the start of the next read as a phrase (stop words included)."""
    service.create_collection(
        "notes", {"title": {"type": "text", "weight": "A"}, "body": {"type": "text"}}
    )
    service.add(
        "notes",
        [
            {"id": "n1", "title": "dogs bark", "body": "the cat is running"},
            {"id": "n2", "title": "running dogs", "body": "a fox and"},
            {"id": "n3", "title": "fox and dog", "body": "nothing"},
        ],
    )
    service.drain()
    assert ids(service.search("notes", q='"running dogs"')) == ["n2"]  # not n1: body→title
    assert ids(service.search("notes", q='"fox and dog"')) == ["n3"]  # not n2: body→title
    assert ids(service.search("notes", q='"bark the cat"')) == []  # not n1: title→body


def test_filters_facets_and_sort(service: Service) -> None:
    setup_books(service)
    assert set(ids(service.search("books", filter="section:tech"))) == {"b3", "b4"}
    assert set(ids(service.search("books", filter="section:tech,home"))) == {"b3", "b4", "b5"}
    assert set(ids(service.search("books", filter=["year>=2005", "year<2018"]))) == {"b2", "b5"}
    assert set(ids(service.search("books", filter="year:2005..2018"))) == {"b2", "b3", "b5"}
    assert set(ids(service.search("books", filter="price>20"))) == {"b3", "b4"}
    assert set(ids(service.search("books", filter="in_print:false"))) == {"b2"}
    # Any of several values works for every filterable type, as a POST body's list does.
    assert set(ids(service.search("books", filter="year:2005,2021"))) == {"b2", "b4"}
    assert len(ids(service.search("books", filter="in_print:true,false"))) == len(BOOKS)
    assert set(ids(service.search("books", filter="price:9.5,12"))) == {"b1", "b2"}
    both = "published:1999-03-01,2005-06-15T10:00:00Z"
    assert set(ids(service.search("books", filter=both))) == {"b1", "b2"}
    assert set(ids(service.search("books", filter="published>=2010-01-01"))) == {"b3", "b4", "b5"}
    assert set(ids(service.search("books", filter="tags:dog"))) == {"b1"}
    assert ids(service.search("books", sort="year:desc")) == ["b4", "b3", "b5", "b2", "b1"]
    assert ids(service.search("books", sort="price")) == ["b1", "b2", "b5", "b3", "b4"]

    result = service.search("books", q="lazy", facets="section,tags", limit=1)
    # Facets count the whole result set, not the page.
    assert len(result["hits"]) == 1
    sections = {f["value"]: f["count"] for f in result["facets"]["section"]}
    assert sections == {"animals": 2, "tech": 1, "home": 1}
    tags = {f["value"]: f["count"] for f in result["facets"]["tags"]}
    assert tags == {"fox": 1, "dog": 1, "cat": 1, "rust": 1}

    body = {
        "q": "lazy",
        "filter": {"section": ["animals"], "year": {"gte": 2000}},
        "facets": ["section"],
    }
    response = service.client.post("/collections/books/search", json=body)
    assert response.status_code == 200, response.text
    assert ids(response.json()) == ["b2"]
    assert response.json()["facets"]["section"] == [{"value": "animals", "count": 1}]


def test_cursor_paging_is_complete_and_stable_under_writes(service: Service) -> None:
    service.create_collection("books", BOOK_FIELDS)
    docs = [
        {
            "id": f"d{i:03d}",
            "title": f"common word {i}",
            "body": "shared text " * (i % 7 + 1),
            "year": 1900 + i % 50,
        }
        for i in range(120)
    ]
    service.add("books", docs)
    service.drain()
    for params in ({"q": "shared"}, {"sort": "year:desc"}, {}):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = service.search(
                "books", limit=25, **params, **({"cursor": cursor} if cursor else {})
            )
            seen += ids(page)
            pages += 1
            if pages == 2:
                # A concurrent write that sorts before the cursor must not shift later pages.
                service.add(
                    "books",
                    [{"id": "a000", "title": "common word shared", "body": "shared", "year": 2100}],
                )
                service.drain()
            cursor = page["next_cursor"]
            if not cursor:
                break
        expected = {d["id"] for d in docs}
        assert expected <= set(seen), params
        assert len(seen) == len(set(seen)), f"duplicates across pages for {params}"
        service.client.delete("/collections/books/documents/a000")
        service.drain()


def test_update_and_delete_are_reflected(service: Service) -> None:
    setup_books(service)
    task_id = service.add("books", [{**BOOKS[0], "title": "The quick brown wolf"}])
    service.drain()
    assert service.task(task_id)["status"] == "succeeded"
    assert ids(service.search("books", q="wolf")) == ["b1"]
    assert ids(service.search("books", q='"brown fox"')) == []

    response = service.client.delete("/collections/books/documents/b4")
    assert response.status_code == 202
    service.drain()
    assert service.task(response.json()["task_id"])["status"] == "succeeded"
    assert ids(service.search("books", q="postgresql")) == []
    assert service.client.get("/collections/books/documents/b4").status_code == 404
    assert service.client.delete("/collections/books/documents/b4").status_code == 404

    info = service.client.get("/collections/books").json()
    assert info["documents"] == 4 and info["pending_tasks"] == 0


def test_unchanged_documents_are_not_reindexed(service: Service) -> None:
    setup_books(service)
    task_id = service.add("books", BOOKS)
    # Nothing changed: no outbox rows, the task is done at once.
    assert service.task(task_id)["status"] == "succeeded"
    assert service.task(task_id)["details"]["indexed"] == len(BOOKS)


def test_tasks_listing_and_document_get(service: Service) -> None:
    setup_books(service)
    doc = service.client.get("/collections/books/documents/b2").json()
    assert doc["document"]["title"] == "Lazy afternoons"
    assert doc["document"]["published"] == "2005-06-15T10:00:00.000000Z"
    listing = service.client.get("/tasks", params={"status": "succeeded", "collection": "books"})
    assert listing.status_code == 200
    assert [t["collection"] for t in listing.json()["results"]] == ["books"]
    assert service.client.get("/tasks", params={"status": "bogus"}).status_code == 422


def test_collection_lifecycle(service: Service) -> None:
    setup_books(service)
    names = [c["name"] for c in service.client.get("/collections").json()]
    assert names == ["books"]
    # Adding a field keeps documents; changing text weights re-indexes them.
    fields = {**BOOK_FIELDS, "body": {"type": "text", "weight": "A"}, "isbn": {"type": "keyword"}}
    response = service.client.put("/collections/books", json={"fields": fields})
    assert response.status_code == 200
    service.drain()
    assert set(ids(service.search("books", q="lazy"))) == {"b1", "b2", "b3", "b5"}
    assert service.client.delete("/collections/books").status_code == 204
    assert service.client.get("/collections/books").status_code == 404
    assert service.client.get("/collections/books/search", params={"q": "x"}).status_code == 404


def test_dates_of_any_year_keep_four_digits_and_their_order(service: Service) -> None:
    service.create_collection("dated", {"when": {"type": "date", "facet": True}})
    service.add(
        "dated",
        [
            {"id": "y1", "when": "0001-01-01"},
            {"id": "y999", "when": "0999-05-01T10:00:00+02:00"},
            {"id": "y1000", "when": "1000-01-01"},
            {"id": "y9999", "when": "9999-12-31T23:59:59Z"},
        ],
    )
    service.drain()
    hits = service.search("dated", sort="when:asc")["hits"]
    assert [h["id"] for h in hits] == ["y1", "y999", "y1000", "y9999"]
    assert [h["document"]["when"] for h in hits] == [
        "0001-01-01T00:00:00.000000Z",
        "0999-05-01T08:00:00.000000Z",
        "1000-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.000000Z",
    ]
    assert set(ids(service.search("dated", filter="when<1000-01-01"))) == {"y1", "y999"}
    facets = service.search("dated", facets="when")["facets"]["when"]
    assert "0999-05-01T08:00:00.000000Z" in {f["value"] for f in facets}
    # A moment that is past the year 9999 (or before 0001) in UTC is refused, not a 500.
    late = [{"id": "late", "when": "9999-12-31T23:59:59-01:00"}]
    response = service.client.post("/collections/dated/documents", json=late)
    assert response.status_code == 422 and "'when'" in response.json()["error"]["message"]
    early = {"filter": "when>=0001-01-01T00:00:00+01:00"}
    response = service.client.get("/collections/dated/search", params=early)
    assert response.status_code == 422 and "0001" in response.json()["error"]["message"]
    assert len(service.search("dated")["hits"]) == 4


def test_forty_keyword_fields_filter_and_facet_and_more_than_256_fields_are_refused(
    service: Service,
) -> None:
    # PostgreSQL's shared GIN index holds 32 columns: the keyword fields past its room get
    # indexes of their own; a collection of 40 was a 503.
    fields: dict[str, Any] = {f"k{i:02}": {"type": "keyword", "facet": True} for i in range(40)}
    fields["title"] = {"type": "text"}
    response = service.client.put("/collections/wide", json={"fields": fields})
    assert response.status_code == 201, response.text
    docs = [
        {"id": str(n), "title": "wide row", **{f"k{i:02}": f"v{n}" for i in range(40)}}
        for n in range(3)
    ]
    service.add("wide", docs)
    service.drain()
    for name in ("k00", "k30", "k39"):
        hits = service.search("wide", q="wide", filter=f"{name}:v0", facets=name)
        assert [h["id"] for h in hits["hits"]] == ["0"], name
        assert hits["facets"][name] == [{"value": "v0", "count": 1}]
    # Fewer keyword fields again: the indexes follow (a removed field's is dropped).
    del fields["k39"]
    assert service.client.put("/collections/wide", json={"fields": fields}).status_code == 200
    service.drain()
    assert [h["id"] for h in service.search("wide", q="wide", filter="k35:v0")["hits"]] == ["0"]
    too_many = {f"t{i}": {"type": "text"} for i in range(257)}
    response = service.client.put("/collections/wider", json={"fields": too_many})
    assert response.status_code == 422 and "256" in response.json()["error"]["message"]
    assert service.client.get("/collections/wider").status_code == 404


def test_a_keyword_value_up_to_2000_bytes_is_indexed_and_a_longer_one_refused(
    service: Service,
) -> None:
    # Random letters do not compress: 10,000 of them were accepted, then failed to index
    # on PostgreSQL (an index entry holds about 2,700 bytes).
    rng = random.Random(7)
    longest = "".join(rng.choice(string.ascii_letters) for _ in range(2000))
    wide = "€" * 666  # 1,998 bytes
    service.create_collection("tags", {"title": {"type": "text"}, "tag": {"type": "keyword"}})
    task = service.add(
        "tags",
        [
            {"id": "a", "title": "long tag", "tag": longest},
            {"id": "b", "title": "x", "tag": [wide]},
        ],
    )
    service.drain()
    assert service.task(task)["status"] == "succeeded", service.task(task)
    assert ids(service.search("tags", filter=f"tag:{longest}")) == ["a"]
    assert ids(service.search("tags", filter=f"tag:{wide}")) == ["b"]
    for too_long in (longest + "x", ["ok", "€" * 667]):
        response = service.client.post(
            "/collections/tags/documents", json=[{"id": "c", "tag": too_long}]
        )
        assert response.status_code == 422, response.text
        assert "2000 bytes" in response.json()["error"]["message"]
    assert service.client.get("/collections/tags/documents/c").status_code == 404


def test_a_document_of_more_words_than_one_index_entry_holds_is_indexed(
    service: Service,
) -> None:
    # 150,000 different random words: a tsvector of 1.8 MB, past PostgreSQL's 1 MB; the
    # document was stored and then failed to index. Now its text is indexed as far as it
    # fits (and whole on OpenSearch).
    rng = random.Random(3)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(8)) for _ in range(150_000)]
    service.create_collection("logs", {"title": {"type": "text"}, "body": {"type": "text"}})
    task = service.add(
        "logs",
        [
            {"id": "dump", "title": "token dump", "body": " ".join(words)},
            {"id": "note", "title": "a note", "body": "token list attached"},
        ],
    )
    service.drain()
    assert service.task(task)["status"] == "succeeded", service.task(task)
    assert ids(service.search("logs", q="token", prefix="false")) == ["dump", "note"]
    assert ids(service.search("logs", q=words[10], prefix="false", typo="false")) == ["dump"]


def test_a_value_twice_in_one_document_counts_once_in_facets(service: Service) -> None:
    # PostgreSQL counted each occurrence (3 for "a" here), OpenSearch each document (2).
    fields = {"title": {"type": "text"}, "tags": {"type": "keyword", "facet": True}}
    service.create_collection("dups", fields)
    service.add(
        "dups",
        [
            {"id": "1", "title": "word", "tags": ["a", "a", "b"]},
            {"id": "2", "title": "word", "tags": ["a"]},
            {"id": "3", "title": "word", "tags": []},
        ],
    )
    service.drain()
    expected = [{"value": "a", "count": 2}, {"value": "b", "count": 1}]
    for q in ("word", ""):
        assert service.search("dups", q=q, facets="tags")["facets"]["tags"] == expected, q
    values = service.client.get("/collections/dups/facets/tags").json()["values"]
    assert values == expected
