"""The query parser (search/query.py): its tree, and its PostgreSQL text against the
server's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from docuseek.search.query import (
    SearchSettings,
    TypoTolerance,
    allowed_typos,
    blank_control_chars,
    first_letter_variants,
    parse,
    tsquery_text,
)

# Query-like text: words, quotes, dashes, `or`, operators and other punctuation.
QUERY_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            ['"', "-", " ", "or", "OR", "(", ")", "!", "&", "|", ":", "'", "\\", ",", "<", ".", "/"]
        ),
        st.sampled_from(["fox", "dog", "the", "a", "lazy", "x1", "é", "東京", "don't"]),
        st.text(max_size=5),
    ),
    max_size=12,
).map("".join)
# The same without `:`, tsquery's weight and prefix marker, which websearch_to_tsquery
# reads in ways of its own (`:-fox` does not negate, `:..` is nothing where `..` is a
# word): the parser treats `:` as the other operator characters.
WITHOUT_COLONS = QUERY_TEXT.map(lambda q: q.replace(":", " "))


@given(QUERY_TEXT, st.booleans(), st.booleans())
def test_any_string_parses(q: str, prefix: bool, typo: bool) -> None:
    parsed = parse(q, SearchSettings(stop_words=["dog"]), prefix=prefix, typo=typo)
    tsquery_text(parsed)
    assert all(t.prefix is False for t in parsed.terms[:-1])
    assert sum(t.prefix for t in parsed.terms) <= (1 if prefix else 0)


def test_punctuation_after_a_word() -> None:
    assert [(t.text, t.prefix, t.typos) for t in parse("stratgy?").terms] == [("stratgy", False, 1)]
    assert [(t.text, t.prefix) for t in parse("image vie*").terms] == [
        ("image", False),
        ("vie", True),
    ]
    assert parse("vie* ").terms[0].prefix  # a `*` asks for it after a space too
    assert not parse("vie.").terms[0].prefix  # finished
    assert not parse("vie)").terms[0].prefix
    assert not parse("vie*", prefix=False).terms[0].prefix
    assert parse("node.js").terms[0].text == "node.js"  # a joined word stays whole
    assert parse('"vie*"').terms[0].text == "vie*"  # phrases as typed
    assert parse("the, fox", SearchSettings(stop_words=["the"])).terms[0].text == "fox"


def test_tree() -> None:
    parsed = parse('new -old "big deal" or strat', prefix=True)
    [first, second] = parsed.groups
    assert [(t.text, t.negated, t.quoted, t.typos) for t in first] == [
        ("new", False, False, 0),
        ("old", True, False, 0),
        ("big deal", False, True, 0),
    ]
    assert [(t.text, t.prefix, t.typos) for t in second] == [("strat", True, 1)]
    assert tsquery_text(parsed) == "('new' & !'old' & 'big deal') | 'strat':*"
    assert tsquery_text(parsed, {3: ["strategi", "start"]}) == (
        "('new' & !'old' & 'big deal') | ('strat':* | 'strategi' | 'start')"
    )


def test_prefix_rules() -> None:
    assert [t.prefix for t in parse("image vie").terms] == [False, True]
    assert [t.prefix for t in parse("image vie ").terms] == [False, False]  # finished word
    assert [t.prefix for t in parse("v").terms] == [False]  # below 2 characters
    assert [t.prefix for t in parse("image -vie").terms] == [False, False]
    assert [t.prefix for t in parse('"image vie"').terms] == [False]
    assert [t.prefix for t in parse("image vie", prefix=False).terms] == [False, False]


@pytest.mark.parametrize(
    ("word", "typos"),
    [
        ("cat", 0),
        ("kern", 0),
        ("kernl", 1),
        ("strategy", 1),
        ("postgresq", 2),
        ("123456", 0),
        ("x11server", 0),
    ],
)
def test_typo_rules(word: str, typos: int) -> None:
    assert allowed_typos(word, TypoTolerance()) == typos
    assert parse(word, prefix=False).terms[0].typos == typos
    assert parse(word, prefix=False, typo=False).terms[0].typos == 0
    assert parse(f'"{word}"', prefix=False).terms[0].typos == 0  # phrases are exact


def test_synonyms_and_stop_words() -> None:
    settings = SearchSettings(
        synonyms=[["Laptop", "notebook", "portable computer"]],
        one_way_synonyms={"NYC": ["new york"]},
        stop_words=["Howto"],
    )
    [term] = parse("laptop", settings, prefix=False).terms
    assert term.alternatives == ("laptop", "notebook", "portable computer")
    [term] = parse("nyc", settings, prefix=False).terms
    assert term.alternatives == ("nyc", "new york")
    assert parse("new york", settings, prefix=False).terms[0].synonyms == ()  # one way
    [term] = parse('"Portable  Computer"', settings, prefix=False).terms
    assert term.synonyms == ("laptop", "notebook")
    assert [t.text for t in parse("howto nyc", settings).terms] == ["nyc"]
    assert [t.text for t in parse('"howto" nyc', settings).terms] == ["howto", "nyc"]
    assert tsquery_text(parse("laptop", settings, prefix=False)) == (
        "('laptop' | 'notebook' | 'portable computer')"
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(q=WITHOUT_COLONS)
def test_postgres_reads_the_text_as_websearch_to_tsquery_reads_the_query(
    engine: Engine, q: str
) -> None:
    """Without synonyms, prefixes or typos, the compiled text means what the query meant
    to websearch_to_tsquery (the syntax the API has always documented)."""
    assume("\x00" not in q)  # the API refuses it (PostgreSQL text cannot hold it)
    compiled = tsquery_text(parse(q, prefix=False, typo=False))
    q = blank_control_chars(q)  # what parse() reads
    with engine.connect() as conn:
        row: Any = conn.execute(
            text(
                "SELECT websearch_to_tsquery('english', :q)::text AS web,"
                " to_tsquery('english', :t)::text AS ours"
            ),
            {"q": q, "t": compiled},
        ).one()
    # A double negation (`--fox`) is `!!'fox'` to PostgreSQL, `'fox'` here; parentheses
    # around a single operand differ in the text only.
    web = row.web.replace("!!", "")
    assert strip_parentheses(row.ours) == strip_parentheses(web), (q, compiled, row.web)


def strip_parentheses(tsquery: str) -> str:
    return tsquery.replace("( ", "").replace(" )", "").replace("(", "").replace(")", "")


def test_first_letter_variants_are_one_edit_of_the_first_letter() -> None:
    variants = first_letter_variants("Kernel")
    assert {"ernel", "ekrnel", "xernel", "akernel"} <= set(variants)
    assert "kernel" not in variants
    w = "kernel"
    for v in variants:  # deleted, swapped with the second, replaced, or one put before it
        assert v in (w[1:], w[1] + w[0] + w[2:]) or v[1:] in (w[1:], w), v
    assert first_letter_variants("a") == []
