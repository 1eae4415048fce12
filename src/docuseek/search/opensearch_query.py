"""OpenSearch queries: a SearchQuery as an OpenSearch search body.

The web-search syntax is parsed by search.query (not by simple_query_string, whose operator
precedence differs from websearch_to_tsquery) into OR-groups of AND-ed terms, each an OR
of clauses: a single word is a `match` (one term, fuzzy when it may have typos, a prefix
when it is the last word), only a multi-word clause a `match_phrase`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docuseek.schema import Collection, FieldSpec, format_date
from docuseek.search.analysis import fold_accents, split_joined, stop_words
from docuseek.search.base import FieldFilter, InvalidCursor, SearchQuery, effective_sort
from docuseek.search.query import (
    DEFAULT_SETTINGS,
    MAX_TYPO_CANDIDATES,
    SearchSettings,
    first_letter_typo_allowed,
    first_letter_variants,
    parse,
)

WEIGHT_BOOST = {"A": 10.0, "B": 4.0, "C": 2.0, "D": 1.0}  # ts_rank's 1.0/0.4/0.2/0.1
ID_FIELD = "id"  # the document's own id (a keyword): the keyset tiebreaker
_WORD_RE = re.compile(r"\w+")
MAX_TOKEN_LENGTH = 255  # the standard tokenizer splits longer runs into several tokens
# Above any sum of the other clauses' constant scores (WEIGHT_BOOST per query word).
EXACT_TIER_BOOST = 100_000.0
# A word with typos held as typed (_words_as_typed): above the text clauses' scores, below
# the tier of matches without typos.
WORD_AS_TYPED_BOOST = 1_000.0
# A word with typos held at most one typo from how it was typed (_words_as_typed): above the
# text clauses' scores, below a word held as typed (nine of them are).
WORD_ONE_TYPO_BOOST = 100.0


@dataclass(frozen=True)
class Clause:
    text: str  # one word or a quoted phrase; several tokens match as a phrase (`<->` in PG)
    negated: bool
    prefix: bool = False  # also matches the indexed words it begins
    typos: int = 0  # fuzziness: edits a matching word may be away
    first_letter: bool = False  # may match the words one edit of its first letter away

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


def _kept(text: str, stop_set: frozenset[str]) -> bool:
    """Whether PostgreSQL keeps the text: not made only of stop words."""
    return any(w.lower() not in stop_set for w in _WORD_RE.findall(text))


def parse_websearch(
    q: str,
    settings: SearchSettings = DEFAULT_SETTINGS,
    stop_set: frozenset[str] = frozenset(),
    *,
    prefix: bool = True,
    typo: bool = True,
    first_letter_typos: bool = False,
) -> list[list[list[Clause]]]:
    """The parsed query (search.query) as OR-groups of AND-ed terms, each term an OR of
    clauses (its text, then its synonyms). A clause made only of stop words is dropped,
    as PostgreSQL drops it."""
    groups: list[list[list[Clause]]] = []
    parsed = parse(q, settings, prefix=prefix, typo=typo, first_letter_typos=first_letter_typos)
    for group in parsed.groups:
        terms: list[list[Clause]] = []
        for term in group:
            clauses = [
                Clause(
                    text,
                    term.negated,
                    term.prefix and i == 0,
                    term.typos if i == 0 else 0,
                    i == 0 and first_letter_typo_allowed(term),
                )
                for i, text in enumerate(term.alternatives)
                if _kept(text, stop_set)
            ]
            if clauses:
                terms.append(clauses)
        if terms:
            groups.append(terms)
    return groups


def _matches(field: str, clause: Clause, fuzzy: bool = True) -> dict[str, Any]:
    word = clause.word
    if word is None:
        return {"match_phrase": {field: clause.text}}
    typos = clause.typos if fuzzy else 0
    if clause.prefix:
        # The analyzed word as a prefix, bounded like PostgreSQL's lexeme prefix; a word
        # being typed may also hold a typo, as in PostgreSQL's `'word':* | 'typo match'`.
        prefix = {"match_bool_prefix": {field: {"query": word, "max_expansions": 50}}}
        if not typos:
            return prefix
        return {"bool": {"should": [prefix, _fuzzy(field, word, typos, clause.first_letter)]}}
    if typos:
        return _fuzzy(field, word, typos, clause.first_letter)
    return {"match": {field: word}}


def _fuzzy(field: str, word: str, typos: int, first_letter: bool) -> dict[str, Any]:
    """The indexed words within `typos` of `word`: stemmed, and unstemmed in the field's
    `exact` subfield, since stems can be further apart than their words (as PostgreSQL
    also looks up the stems of the words one edit away)."""

    exact = f"{field}.exact"
    should = [_fuzzy_match(field, word, typos), _fuzzy_match(exact, word, typos)]
    if first_letter:
        # A typo in the first letter counts as two (Meilisearch's rule; one in the retry of
        # a query that found nothing): the variants of the first letter match as they are.
        should.append({"match": {exact: {"query": " ".join(first_letter_variants(word))}}})
    return {"bool": {"should": should}}


def _fuzzy_match(target: str, word: str, typos: int) -> dict[str, Any]:
    """The words of one (sub)field within `typos` of `word`. Our own edit distance, not
    AUTO, so both backends allow the same typos; the first letter is kept, as PostgreSQL's
    vocabulary lookup keeps it."""
    return {
        "match": {
            target: {
                "query": word,
                "fuzziness": typos,
                "fuzzy_transpositions": True,
                "prefix_length": 1,
                "max_expansions": MAX_TYPO_CANDIDATES,
            }
        }
    }


def _weighted(
    collection: Collection, clause: Clause, suffix: str, scale: float, fuzzy: bool = True
) -> dict[str, Any]:
    """A clause in any text field, scored by the best field's weight only.

    Constant scores keep relevance a function of the document and the query alone: BM25's
    corpus statistics would reorder results while documents are written (and differ
    between shards), which would break relevance-ordered cursor paging.
    """
    exact_fields = _exact_fields(collection)
    return {
        "dis_max": {
            "queries": [
                {
                    "constant_score": {
                        "filter": _matches(
                            f"{f.name}{suffix}", clause, fuzzy and f.name not in exact_fields
                        ),
                        "boost": WEIGHT_BOOST[f.weight] * scale,
                    }
                }
                for f in collection.text_fields
            ]
        }
    }


def _exact_fields(collection: Collection) -> set[str]:
    """Fields without typos: `disable_on_fields`, widened to every field sharing a weight
    with one, as PostgreSQL (whose tsvector knows weights, not fields) must."""
    disabled = set(collection.search_settings.typo_tolerance.disable_on_fields)
    off = {f.weight for f in collection.text_fields if f.name in disabled}
    return {f.name for f in collection.text_fields if f.weight in off}


def _term(collection: Collection, clauses: list[Clause]) -> dict[str, Any]:
    if len(clauses) == 1:
        return _weighted(collection, clauses[0], "", 1.0)
    return {
        "bool": {
            "should": [_weighted(collection, c, "", 1.0) for c in clauses],
            "minimum_should_match": 1,
        }
    }


def _collection_groups(
    collection: Collection, q: str, *, prefix: bool, typo: bool, first_letter_typos: bool
) -> list[list[list[Clause]]]:
    """The query as the collection reads it: joined words split, its settings and its
    language's stop words applied."""
    return parse_websearch(
        split_joined(q),
        collection.search_settings,
        query_stop_words(collection),
        prefix=prefix,
        typo=typo,
        first_letter_typos=first_letter_typos,
    )


def text_query(
    collection: Collection,
    q: str,
    *,
    prefix: bool = True,
    typo: bool = True,
    first_letter_typos: bool = False,
) -> dict[str, Any]:
    groups = _collection_groups(
        collection, q, prefix=prefix, typo=typo, first_letter_typos=first_letter_typos
    )
    if not groups or not collection.text_fields:
        return {"match_none": {}}
    membership = _membership(collection, groups)
    # Unstemmed matches rank higher; a `should` beside `must` changes the score only.
    clauses = [c for g in groups for t in g for c in t if not c.negated]
    exact = [_weighted(collection, c, ".exact", 0.5, fuzzy=False) for c in clauses]
    if any(c.typos for c in clauses):
        # Documents matching the query without typos rank above all those matching only
        # through a typo, as on PostgreSQL: the typo-free query's membership is worth more
        # than any sum of the other scores.
        as_typed = _collection_groups(
            collection, q, prefix=prefix, typo=False, first_letter_typos=False
        )
        typo_free = _membership(collection, as_typed)
        exact.append({"constant_score": {"filter": typo_free, "boost": EXACT_TIER_BOOST}})
        exact += _words_as_typed(collection, groups, as_typed)
    return {"bool": {"must": [membership], "should": exact}}


def _words_as_typed(
    collection: Collection,
    groups: list[list[list[Clause]]],
    as_typed: list[list[list[Clause]]],
) -> list[dict[str, Any]]:
    """For a query of one group of several words: each word with typos that a document
    holds as typed (`as_typed`: the query parsed without typos) adds WORD_AS_TYPED_BOOST,
    and each it holds at most one typo from how it was written (in the unstemmed `exact`
    subfields) WORD_ONE_TYPO_BOOST, so among the matches needing typos those with more
    words as typed come first, then those with more words a typo away (as on PostgreSQL,
    and Meilisearch, which ranks by the typos a match needed)."""
    if len(groups) != 1 or len(groups[0]) < 2 or [len(g) for g in as_typed] != [len(groups[0])]:
        return []
    exact_fields = _exact_fields(collection)
    scores = []
    for term, typed in zip(groups[0], as_typed[0], strict=True):
        if not any(c.typos for c in term) or term[0].negated:
            continue
        held = _term(collection, typed)
        scores.append({"constant_score": {"filter": held, "boost": WORD_AS_TYPED_BOOST}})
        word = term[0].word
        one_typo = []
        if word is not None and term[0].typos:
            one_typo = [
                _fuzzy_match(f"{f.name}.exact", word, 1)
                for f in collection.text_fields
                if f.name not in exact_fields
            ]
        near = {"bool": {"should": [held, *one_typo], "minimum_should_match": 1}}
        scores.append({"constant_score": {"filter": near, "boost": WORD_ONE_TYPO_BOOST}})
    return scores


def _membership(collection: Collection, groups: list[list[list[Clause]]]) -> dict[str, Any]:
    """The documents the parsed query matches (its OR-groups of AND-ed terms)."""
    alternatives = [
        {
            "bool": {
                "must": [_term(collection, t) for t in g if not t[0].negated],
                "must_not": [_term(collection, t) for t in g if t[0].negated],
            }
        }
        for g in groups
    ]
    if len(alternatives) == 1:
        return alternatives[0]
    return {"bool": {"should": alternatives, "minimum_should_match": 1}}


def highlight_query(
    collection: Collection,
    q: str,
    *,
    prefix: bool = True,
    typo: bool = True,
    first_letter_typos: bool = False,
) -> dict[str, Any]:
    groups = _collection_groups(
        collection, q, prefix=prefix, typo=typo, first_letter_typos=first_letter_typos
    )
    clauses = [c for g in groups for t in g for c in t if not c.negated]
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
        return format_date(datetime.fromtimestamp(int(key) / 1000, UTC))
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
    must = []
    if has_q:
        must.append(
            text_query(
                collection,
                query.q,
                prefix=query.prefix,
                typo=query.typo,
                first_letter_typos=query.first_letter_typos,
            )
        )
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
            "highlight_query": highlight_query(
                collection,
                query.q,
                prefix=query.prefix,
                typo=query.typo,
                first_letter_typos=query.first_letter_typos,
            ),
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
