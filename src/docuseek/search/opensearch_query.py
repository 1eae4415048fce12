"""OpenSearch queries: a SearchQuery as an OpenSearch search body.

The web-search syntax is parsed here (not by simple_query_string, whose operator
precedence differs from websearch_to_tsquery) into OR-groups of AND-ed clauses: a single
word is a `match` (one term), only a multi-word clause a `match_phrase`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docuseek.schema import Collection, FieldSpec
from docuseek.search.analysis import fold_accents, split_joined, stop_words
from docuseek.search.base import FieldFilter, InvalidCursor, SearchQuery, effective_sort

WEIGHT_BOOST = {"A": 10.0, "B": 4.0, "C": 2.0, "D": 1.0}  # ts_rank's 1.0/0.4/0.2/0.1
ID_FIELD = "id"  # the document's own id (a keyword): the keyset tiebreaker
_WORD_RE = re.compile(r"\w+")
MAX_TOKEN_LENGTH = 255  # the standard tokenizer splits longer runs into several tokens


@dataclass(frozen=True)
class Clause:
    text: str  # one word or a quoted phrase; several tokens match as a phrase (`<->` in PG)
    negated: bool

    @property
    def word(self) -> str | None:
        """The clause's only token, when the standard tokenizer surely sees exactly one.

        Then a `match` (a term query) has the phrase's membership at a fraction of its cost.
        Non-ASCII text stays a phrase: the tokenizer may split it (CJK per character) or join
        what `\\w` does not (combining marks); ASCII punctuation only ever ends a token.
        """
        words: list[str] = _WORD_RE.findall(self.text)
        if len(words) == 1 and self.text.isascii() and len(words[0]) <= MAX_TOKEN_LENGTH:
            return words[0]
        return None


def query_stop_words(collection: Collection) -> frozenset[str]:
    """The query words PostgreSQL drops for the live generation's analysis. With unaccent
    it looks a word up in the stop list after folding its accents, so a listed word with
    accents (`été`) is no stop word."""
    analysis = collection.live_analysis
    words = stop_words(analysis.language)
    if analysis.unaccent:
        return frozenset(w for w in words if fold_accents(w) == w)
    return frozenset(words)


def parse_websearch(q: str, stop_set: frozenset[str] = frozenset()) -> list[list[Clause]]:
    """websearch_to_tsquery's grammar: OR-groups of AND-ed clauses, stop words removed.

    Words and "quoted phrases" are AND-ed, `-` negates, the word `or` separates groups.
    A clause made only of stop words is dropped, as PostgreSQL drops it.
    """
    groups: list[list[Clause]] = [[]]
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
            continue
        negated = ch == "-"
        if negated:
            i += 1
            if i >= n or q[i].isspace():
                continue
        if q[i] == '"':
            end = q.find('"', i + 1)
            end = n if end < 0 else end
            text, i = q[i + 1 : end], end + 1
        else:
            start = i
            while i < n and not q[i].isspace() and q[i] != '"':
                i += 1
            text = q[start:i]
            if not negated and text.lower() == "or":
                if groups[-1]:
                    groups.append([])
                continue
        words = [w.lower() for w in _WORD_RE.findall(text)]
        if any(w not in stop_set for w in words):
            groups[-1].append(Clause(text, negated))
    return [g for g in groups if g]


def _matches(field: str, clause: Clause) -> dict[str, Any]:
    word = clause.word
    return {"match": {field: word}} if word else {"match_phrase": {field: clause.text}}


def _weighted(collection: Collection, clause: Clause, suffix: str, scale: float) -> dict[str, Any]:
    """A clause in any text field, scored by the best field's weight only.

    Constant scores keep relevance a function of the document and the query alone: BM25's
    corpus statistics would reorder results while documents are written (and differ
    between shards), which would break relevance-ordered cursor paging.
    """
    return {
        "dis_max": {
            "queries": [
                {
                    "constant_score": {
                        "filter": _matches(f"{f.name}{suffix}", clause),
                        "boost": WEIGHT_BOOST[f.weight] * scale,
                    }
                }
                for f in collection.text_fields
            ]
        }
    }


def text_query(collection: Collection, q: str) -> dict[str, Any]:
    groups = parse_websearch(split_joined(q), query_stop_words(collection))
    if not groups or not collection.text_fields:
        return {"match_none": {}}
    alternatives = [
        {
            "bool": {
                "must": [_weighted(collection, c, "", 1.0) for c in g if not c.negated],
                "must_not": [_weighted(collection, c, "", 1.0) for c in g if c.negated],
            }
        }
        for g in groups
    ]
    membership = (
        alternatives[0]
        if len(alternatives) == 1
        else {"bool": {"should": alternatives, "minimum_should_match": 1}}
    )
    # Unstemmed matches rank higher; a `should` beside `must` changes the score only.
    exact = [_weighted(collection, c, ".exact", 0.5) for g in groups for c in g if not c.negated]
    return {"bool": {"must": [membership], "should": exact}}


def highlight_query(collection: Collection, q: str) -> dict[str, Any]:
    groups = parse_websearch(split_joined(q), query_stop_words(collection))
    clauses = [c for g in groups for c in g if not c.negated]
    return {
        "bool": {"should": [_matches(f.name, c) for c in clauses for f in collection.text_fields]}
    }


def filter_query(collection: Collection, flt: FieldFilter) -> list[dict[str, Any]]:
    spec = collection.fields[flt.field]
    out: list[dict[str, Any]] = []
    if flt.values:
        out.append({"terms": {spec.name: list(flt.values)}})
    pairs = (("gte", flt.gte), ("gt", flt.gt), ("lte", flt.lte), ("lt", flt.lt))
    bounds = {op: bound for op, bound in pairs if bound is not None}
    if bounds:
        out.append({"range": {spec.name: bounds}})
    return out


def facet_value(spec: FieldSpec, bucket: dict[str, Any]) -> Any:
    """A terms bucket's key as PostgreSQL returns the stored JSON value."""
    key = bucket["key"]
    if spec.type == "boolean":
        return bucket.get("key_as_string", str(bool(key)).lower()) == "true"
    if spec.type == "date":
        moment = datetime.fromtimestamp(int(key) / 1000, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return key


def sort_clause(query: SearchQuery) -> list[dict[str, Any]]:
    sort: list[dict[str, Any]] = []
    for key in effective_sort(query):
        order = "desc" if key.descending else "asc"
        if key.field == "_score":
            sort.append({"_score": {"order": order}})
        else:
            name = ID_FIELD if key.field == "_id" else key.field
            sort.append({name: {"order": order, "missing": "_last"}})
    return sort


def fits_sort(collection: Collection, key: dict[str, Any], value: Any) -> bool:
    """Whether a cursor's value has the JSON type OpenSearch gave for this sort key: a
    forged one would fail in the engine, some as a 500 (which reads as unavailable)."""
    (name,) = key
    # A document without the field sorts last: as infinity, which JSON spells as text.
    number = (isinstance(value, int | float) and not isinstance(value, bool)) or value in (
        "Infinity",
        "-Infinity",
    )
    if name == "_score":
        return number
    if name == ID_FIELD:  # every document has an id
        return isinstance(value, str)
    if value is None:
        return True
    spec = collection.fields.get(name)
    if spec is None or spec.type == "keyword":
        return isinstance(value, str)
    if spec.type == "boolean":
        return number or isinstance(value, bool)
    if spec.type == "date":
        return number or isinstance(value, str)
    return number


def search_body(collection: Collection, query: SearchQuery) -> dict[str, Any]:
    """The body of the search request: one more hit than asked (has_more without a count),
    the cursor's `search_after`, highlights and facet aggregations."""
    has_q = bool(query.q.strip())
    filters = [c for f in query.filters for c in filter_query(collection, f)]
    must = [text_query(collection, query.q)] if has_q else []
    sort = sort_clause(query)
    body: dict[str, Any] = {
        "query": {"bool": {"must": must, "filter": filters}},
        "sort": sort,
        "size": query.limit + 1,  # one more than asked: has_more without a count
        "track_total_hits": True,
        "track_scores": has_q,
    }
    if query.after is not None:
        if len(query.after) != len(sort) or not all(
            fits_sort(collection, key, value) for key, value in zip(sort, query.after, strict=True)
        ):
            raise InvalidCursor("cursor does not match this query's sort")
        body["search_after"] = list(query.after)
    if has_q and query.highlight and collection.text_fields:
        body["highlight"] = {
            "encoder": "html",
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "number_of_fragments": 2,
            "fragment_size": 160,
            "fields": {f.name: {} for f in collection.text_fields},
            "highlight_query": highlight_query(collection, query.q),
        }
    if query.facets:
        body["aggs"] = {
            name: {
                "terms": {
                    "field": name,
                    "size": query.facet_size,
                    "shard_size": max(100, query.facet_size * 5),
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
            for name in query.facets
        }
    return body
