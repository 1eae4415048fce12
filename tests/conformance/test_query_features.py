"""Typo tolerance, prefixes, synonyms, stop words and pending_tasks, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Service

FIELDS: dict[str, Any] = {
    "title": {"type": "text", "weight": "A"},
    "body": {"type": "text"},
}
DOCS: list[dict[str, Any]] = [
    {"id": "d1", "title": "Deployment strategy", "body": "How to plan a rollout."},
    {"id": "d2", "title": "Nginx configuration", "body": "Serve static files."},
    {"id": "d3", "title": "Postgresql replication", "body": "Streaming setup."},
    {"id": "d4", "title": "Bug 12345 fixed", "body": "A crash on exit."},
    {"id": "d5", "title": "Kernel tuning", "body": "Scheduler knobs."},
    {"id": "d6", "title": "Kernal tuning", "body": "A misspelt copy."},
    {"id": "d7", "title": "Crab recipes", "body": "Press n for the next recipe."},
    {"id": "d8", "title": "Laptop stand", "body": "Aluminium."},
    {"id": "d9", "title": "Notebook cooler", "body": "Two fans."},
    {"id": "d10", "title": "Hotels in New York", "body": "Rooms."},
    {"id": "d11", "title": "NYC subway map", "body": "Lines."},
    {"id": "d12", "title": "York minster", "body": "A new stone roof."},
    {"id": "d13", "title": "Image viewer", "body": "Shows pictures."},
]


@pytest.fixture
def svc(service: Service) -> Service:
    service.create_collection("q", FIELDS)
    service.add("q", DOCS)
    service.drain()
    return service


def ids(svc: Service, q: str, **params: Any) -> list[str]:
    return [h["id"] for h in svc.search("q", q=q, **params)["hits"]]


def exact_ids(svc: Service, q: str) -> set[str]:
    return set(ids(svc, q, prefix="false"))


def put_settings(svc: Service, settings: dict[str, Any]) -> dict[str, Any]:
    response = svc.client.put("/collections/q/settings", json=settings)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_one_typo_is_found_and_a_transposition_is_one_typo(svc: Service) -> None:
    assert exact_ids(svc, "stratgy") == {"d1"}  # a letter missing
    assert exact_ids(svc, "ngnix") == {"d2"}  # two letters swapped
    # One typo from `strategy`, two from its stem `strategi`: words are one typo apart.
    assert exact_ids(svc, "strateyg") == {"d1"}
    assert ids(svc, "stratgy", typo="false", prefix="false") == []


def test_a_typo_finds_words_whose_stem_stems_to_another_word(service: Service) -> None:
    """English stems many words to a lexeme that stems again to another (`traverse` is
    indexed as `travers`, which stems to `traver`): a typo of such a word still finds
    it."""
    service.create_collection("stems", FIELDS)
    service.add(
        "stems",
        [
            {"id": "t1", "title": "Traverse a tree", "body": "Walks every node."},
            {"id": "t2", "title": "Expensive queries", "body": "Slow plans."},
            {"id": "t3", "title": "Releases", "body": "Shipped increasingly often."},
        ],
    )
    service.drain()

    def found(q: str) -> set[str]:
        return {h["id"] for h in service.search("stems", q=q, prefix="false")["hits"]}

    assert found("trverse") == {"t1"}  # a letter missing
    assert found("expensiev") == {"t2"}  # two letters swapped
    assert found("rleases") == {"t3"}
    assert found("inceasingly") == {"t3"}


def test_a_word_being_typed_may_hold_a_typo(svc: Service) -> None:
    # The defaults: the last word is a prefix, and a typo in it is forgiven too.
    assert ids(svc, "stratgy") == ["d1"]
    assert ids(svc, "deployment stratgy") == ["d1"]
    assert ids(svc, "ngnix") == ["d2"]


def test_two_typos_only_on_long_words(svc: Service) -> None:
    assert exact_ids(svc, "pastgresqk") == {"d3"}  # 10 letters: two typos allowed
    assert exact_ids(svc, "ngjnz") == set()  # 5 letters: one typo only


def test_a_first_letter_typo_counts_as_two(svc: Service) -> None:
    assert exact_ids(svc, "qostgresql") == {"d3"}  # 10 letters: two typos, spent on the first
    assert exact_ids(svc, "ostgresql") == {"d3"}  # the first letter missing
    assert exact_ids(svc, "qostgresqk") == set()  # a first-letter typo and one more
    # 6 letters, one typo allowed: not in the first letter while the query finds
    # something as typed.
    assert exact_ids(svc, "recipes or xernel") == {"d7"}


def test_a_query_that_finds_nothing_counts_a_first_letter_typo_as_one(
    svc: Service,
) -> None:
    # Nothing matches as typed: the retry lets the first letter be the word's one typo.
    assert ids(svc, "xernel", prefix="false") == ["d5"]  # kernel, not kernal: two typos
    assert ids(svc, "scheduler xnobs", prefix="false") == ["d5"]
    assert exact_ids(svc, "xernal") == {"d6"}
    # Still one typo in all: the first letter and one more stay too many.
    assert exact_ids(svc, "xernol") == set()
    assert exact_ids(svc, "xernel") == {"d5"} and ids(svc, "xernel", typo="false") == []
    # Words too short for a typo get none in the retry either.
    assert exact_ids(svc, "xrab") == set()


def test_no_typos_on_short_words_or_numbers(svc: Service) -> None:
    assert exact_ids(svc, "crob") == set()  # 4 letters
    assert exact_ids(svc, "crab") == {"d7"}
    assert exact_ids(svc, "12346") == set()
    assert exact_ids(svc, "12345") == {"d4"}


def test_no_typos_on_words_longer_than_the_limit(svc: Service) -> None:
    middle = "identifier" * 6
    svc.add(
        "q", [{"id": "w64", "title": f"x{middle}abc"}, {"id": "w65", "title": f"y{middle}wxyz"}]
    )
    svc.drain()
    assert exact_ids(svc, f"x{middle}abd") == {"w64"}  # 64 letters: typos allowed
    assert exact_ids(svc, f"y{middle}wxyz") == {"w65"}
    assert exact_ids(svc, f"y{middle}wxzz") == set()  # 65 letters: none


@pytest.mark.parametrize("length", [100, 150, 300, 1999])
def test_a_long_word_is_searched_without_error(svc: Service, length: int) -> None:
    # Its typo variants once outgrew what PostgreSQL holds in one tsvector (a 503).
    for word in ("é" * length, "k" * length):
        assert svc.search("q", q=word)["hits"] == []
    assert exact_ids(svc, "crab " + "k" * 150) == set()
    assert exact_ids(svc, "crab OR " + "k" * 150) == {"d7"}


def test_exact_matches_rank_above_typo_matches(svc: Service) -> None:
    assert ids(svc, "kernel", prefix="false") == ["d5", "d6"]
    assert ids(svc, "kernal", prefix="false") == ["d6", "d5"]
    assert ids(svc, "kernel", prefix="false", typo="false") == ["d5"]


def test_every_exact_match_ranks_above_every_typo_match(service: Service) -> None:
    # The exact match holds the words once, in a low-weight field; the typo match holds
    # them over and over in the title, which alone would rank it far higher.
    service.create_collection("tiers", FIELDS)
    service.add(
        "tiers",
        [
            {"id": "exact", "title": "Scheduler", "body": "The kernel has a tuning guide."},
            {"id": "typo", "title": "Kernal tuning, kernal tuning", "body": "Kernal tuning."},
        ],
    )
    service.drain()
    hits = service.search("tiers", q="kernel tuning", prefix="false")["hits"]
    assert [h["id"] for h in hits] == ["exact", "typo"]


def test_of_typo_matches_those_with_more_words_as_typed_rank_first(service: Service) -> None:
    """`kernel tunign`: nothing holds both words as typed. The document with `kernel` as
    typed ranks above the one that needs a typo for both words, however often it repeats
    them (Meilisearch ranks by the typos a match needed)."""
    service.create_collection("typos", FIELDS)
    service.add(
        "typos",
        [
            {"id": "y", "title": "Kernal tuning", "body": "Kernal tuning, kernal tuning."},
            {"id": "x", "title": "Kernel notes", "body": "On tuning it."},
        ],
    )
    service.drain()
    hits = service.search("typos", q="kernel tunign", prefix="false")["hits"]
    assert [h["id"] for h in hits] == ["x", "y"]


def test_of_typo_matches_those_with_more_words_a_typo_away_rank_first(service: Service) -> None:
    """`alternatively interseted`: both documents hold `alternatively` as typed and need
    typos for the other word. `interested` is one typo from `interseted`; `intercept` is
    four, though its stem is two edits from `interset`, the stem of what was typed, which
    a word of ten letters may have, so it matches too. The document with `interested`
    ranks first, even with both words in a body where the other has them in its title
    (Meilisearch ranks by the typos a match needed)."""
    service.create_collection("near", FIELDS)
    service.add(
        "near",
        [
            {"id": "far", "title": "Alternatively intercept", "body": "Alternatively intercept."},
            {"id": "near", "title": "Notes", "body": "Alternatively, for the interested."},
        ],
    )
    service.drain()
    hits = service.search("near", q="alternatively interseted", prefix="false")["hits"]
    assert [h["id"] for h in hits] == ["near", "far"]


def test_typo_tolerance_settings(svc: Service) -> None:
    put_settings(svc, {"typo_tolerance": {"enabled": False}})
    assert exact_ids(svc, "stratgy") == set()
    put_settings(svc, {"typo_tolerance": {"min_word_size_one_typo": 8}})
    assert exact_ids(svc, "stratgy") == set()  # 7 letters
    assert exact_ids(svc, "pastgresql") == {"d3"}  # 10 letters: one typo still allowed
    put_settings(svc, {"typo_tolerance": {"disable_on_words": ["Stratgy"]}})
    assert exact_ids(svc, "stratgy") == set()
    assert exact_ids(svc, "ngnix") == {"d2"}


def test_typos_disabled_on_a_field(svc: Service) -> None:
    assert exact_ids(svc, "stratgy") == {"d1"}  # in a title
    assert exact_ids(svc, "statc") == {"d2"}  # in a body
    put_settings(svc, {"typo_tolerance": {"disable_on_fields": ["title"]}})
    assert exact_ids(svc, "stratgy") == set()
    assert exact_ids(svc, "statc") == {"d2"}
    assert exact_ids(svc, "strategy") == {"d1"}
    bad = {"typo_tolerance": {"disable_on_fields": ["nope"]}}
    response = svc.client.put("/collections/q/settings", json=bad)
    assert response.status_code == 422 and "nope" in response.json()["error"]["message"]
    assert svc.client.get("/collections/q/settings").json()["typo_tolerance"][
        "disable_on_fields"
    ] == ["title"]


def test_prefix_on_the_last_word(svc: Service) -> None:
    assert ids(svc, "strat") == ["d1"]
    assert ids(svc, "image vie") == ["d13"]
    assert ids(svc, "deployment stra") == ["d1"]
    assert ids(svc, "stra deployment") == []  # only the last word is a prefix
    assert ids(svc, "strat ") == []  # a space after it: the word is finished


def test_punctuation_after_a_word_keeps_its_typos_and_a_star_asks_for_the_prefix(
    svc: Service,
) -> None:
    assert exact_ids(svc, "stratgy?") == {"d1"}
    assert exact_ids(svc, "ngnix, configuration") == {"d2"}
    assert ids(svc, "image vie*") == ["d13"]
    assert ids(svc, "image vie* ") == ["d13"]  # asked for, even after a space
    assert ids(svc, "image vie.") == []  # the word is finished
    assert ids(svc, "image vie*", prefix="false") == []


def test_prefix_false_turns_it_off(svc: Service) -> None:
    assert ids(svc, "image vie", prefix="false") == []
    body = {"q": "image vie", "prefix": False}
    response = svc.client.post("/collections/q/search", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["hits"] == []


def test_multi_search_honours_prefix_and_typo(svc: Service) -> None:
    queries = [
        {"collection": "q", "q": "image vie"},
        {"collection": "q", "q": "image vie", "prefix": False},
        {"collection": "q", "q": "stratgy"},
        {"collection": "q", "q": "stratgy", "typo": False},
    ]
    response = svc.client.post("/multi-search", json={"queries": queries})
    assert response.status_code == 200, response.text
    found = [[h["id"] for h in r["hits"]] for r in response.json()["results"]]
    assert found == [["d13"], [], ["d1"], []]


def test_a_one_letter_query_matches_that_word_only(svc: Service) -> None:
    # `n` as a prefix would match nginx, new, notebook, next…: below 2 characters the last
    # word matches only itself.
    assert ids(svc, "n") == ["d7"]


def test_multi_way_synonyms_take_effect_without_reindex(svc: Service) -> None:
    assert exact_ids(svc, "laptop") == {"d8"}
    before = svc.client.get("/collections/q").json()["generation"]
    put_settings(svc, {"synonyms": [["laptop", "notebook"]]})
    assert exact_ids(svc, "laptop") == {"d8", "d9"}
    assert exact_ids(svc, "Notebook") == {"d8", "d9"}
    described = svc.client.get("/collections/q").json()
    assert described["generation"] == before and described["pending_tasks"] == 0
    put_settings(svc, {})
    assert exact_ids(svc, "laptop") == {"d8"}


def test_one_way_synonyms_with_a_phrase(svc: Service) -> None:
    put_settings(svc, {"one_way_synonyms": {"nyc": ["new york"]}})
    # "new york" is a phrase: d12 has both words, apart.
    assert exact_ids(svc, "nyc") == {"d10", "d11"}
    assert exact_ids(svc, "new york") == {"d10", "d12"}  # one way: not d11
    assert exact_ids(svc, "nyc -subway") == {"d10"}


def test_stop_words_are_dropped_from_queries(svc: Service) -> None:
    assert exact_ids(svc, "howto kernel") == set()
    put_settings(svc, {"stop_words": ["howto"]})
    assert exact_ids(svc, "howto kernel") == {"d5", "d6"}
    assert exact_ids(svc, '"howto" kernel') == set()  # a quoted word is kept


def test_settings_api_round_trip_and_bad_input(svc: Service) -> None:
    settings = {"synonyms": [["a1", "b1"]], "stop_words": ["x"]}
    stored = put_settings(svc, settings)
    assert stored["synonyms"] == [["a1", "b1"]] and stored["typo_tolerance"]["enabled"]
    assert svc.client.get("/collections/q/settings").json() == stored
    for bad in (
        {"synonyms": [["lonely"]]},
        {"stop_words": ["two words"]},
        {"typo_tolerance": {"min_word_size_one_typo": 9, "min_word_size_two_typos": 5}},
        {"unknown": 1},
        {"one_way_synonyms": {"nyc": []}},
    ):
        response = svc.client.put("/collections/q/settings", json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert svc.client.get("/collections/q/settings").json() == stored  # nothing stored
    assert svc.client.get("/collections/nope/settings").status_code == 404
    assert svc.client.put("/collections/nope/settings", json={}).status_code == 404


def test_pending_tasks_in_the_search_response(svc: Service) -> None:
    assert svc.search("q", q="kernel")["pending_tasks"] == 0
    svc.add("q", [{"id": "n1", "title": "Fresh kernel", "body": "New."}])
    svc.add("q", [{"id": "n2", "title": "Fresher kernel", "body": "Newer."}])
    result = svc.search("q", q="fresh", prefix="false")
    assert result["pending_tasks"] == 2 and result["hits"] == []
    result = svc.search("q", q="kernel")  # with hits too, whichever way it is read
    assert result["pending_tasks"] == 2 and result["hits"]
    svc.drain()
    result = svc.search("q", q="fresh", prefix="false")
    assert result["pending_tasks"] == 0 and [h["id"] for h in result["hits"]] == ["n1"]
