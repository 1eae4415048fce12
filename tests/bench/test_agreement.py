"""The benchmark's hit-set agreement: a tiered page's ids are checked against the raw
engine, and an id the raw tsvector misses only because Docuseek indexes the parts of a
joined word is reported as a match, not as a wrong result."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.run import summarize_agreement


def tiered_row(ids: list[str], matching: int, by_parts: int | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "class": "phrase",
        "q": '"runtime library"',
        "total_relation": "gte",
        "tiered": True,
        "docuseek_total": 1000,
        "raw_total": 1200,
        "docuseek_ids": ids,
        "raw_ids": [],
        "jaccard": 0.0,
        "ids_matching": matching,
    }
    if by_parts is not None:
        row["ids_matching_by_parts"] = by_parts
    return row


def test_ids_matching_through_a_joined_words_parts_are_matches() -> None:
    ag = summarize_agreement([tiered_row(["a", "b", "c"], 2, by_parts=3)])
    assert ag["tiered_ids_all_match"] is True
    assert ag["tiered_ids_matching_by_parts"] == 1
    line = report.agreement_line(ag)
    assert "every returned id is a real match (1 only through the parts of a joined" in line


def test_an_id_matching_neither_way_is_reported() -> None:
    ag = summarize_agreement([tiered_row(["a", "b", "c"], 1, by_parts=2)])
    assert ag["tiered_ids_all_match"] is False
    assert ag["tiered_ids_matching_by_parts"] == 1
    assert "SOME RETURNED IDS DO NOT MATCH" in report.agreement_line(ag)


def test_without_the_check_by_parts_a_raw_miss_is_reported() -> None:
    ag = summarize_agreement([tiered_row(["a", "b"], 1), tiered_row(["c"], 1)])
    assert ag["tiered_ids_all_match"] is False
    assert ag["tiered_ids_matching_by_parts"] == 0
    line = report.agreement_line(ag)
    assert "SOME RETURNED IDS DO NOT MATCH" in line and "joined word" not in line
