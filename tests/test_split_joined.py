"""The query side of joined words: such a word becomes the phrase of its parts."""

from __future__ import annotations

import pytest

from docuseek.search.analysis import split_joined, stop_words


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("JSON/UBJSON", '"JSON UBJSON"'),
        (
            "see System.DirectoryServices.Protocols now",
            'see "System DirectoryServices Protocols" now',
        ),
        ("-user@example.org", '-"user example org"'),
        ("foo_bar OR x-y", '"foo bar" OR "x y"'),
        ('"the JSON/UBJSON format" json', '"the JSON UBJSON format" json'),
        ("plain words. end", "plain words. end"),
        ("1.2.3", '"1 2 3"'),
    ],
)
def test_joined_query_words_become_phrases(q: str, expected: str) -> None:
    assert split_joined(q) == expected


def test_stop_words_are_postgresql_lists() -> None:
    assert "die" in stop_words("german") and "the" not in stop_words("german")
    assert "the" in stop_words("english")
    assert stop_words("simple") == () and stop_words("romanian") == ()
