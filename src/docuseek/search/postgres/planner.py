"""The PostgreSQL backend's query planner: one search's SQL, built from the query and run
on one connection.

Ordering every match by ts_rank costs a read of every matching row: fine for a few
thousand, seconds for a common word in a million. So a query first counts its matches up
to `exact_limit`:
- up to that many, they are ranked exactly (ts_rank with the schema's weights) and the
  total is exact;
- beyond it, the matches whose words ts_rank rewards most (found through impact tokens
  stored with each row, a few hundred at most) come first, ranked exactly; then the
  other matches in the highest-weighted fields, then the rest, each of these two tiers
  in id order (both walk an index and stop at the page); scores are computed for the
  page only, and the total says `gte` exact_limit.
A cursor keeps the mode it was made in, so paging stays complete and stable either way.
"""

from __future__ import annotations

import sys
from collections.abc import Container, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rapidfuzz.distance import OSA

from docuseek.queries import has_pages_sql, pending_tasks_sql
from docuseek.schema import Collection, FieldSpec, normalize_date
from docuseek.search.analysis import split_joined
from docuseek.search.base import (
    CollectionState,
    FieldFilter,
    Hit,
    InvalidCursor,
    SearchQuery,
    SearchResult,
    SortKey,
    effective_sort,
)
from docuseek.search.postgres.layout import (
    IMPACT_LEVELS,
    PARAM_TYPES,
    PLAIN_LEXEME,
    Layout,
    column,
    impact_tokens,
    is_one_pair,
    query_sql,
    quote_literal,
    required_lexemes,
    required_pairs,
    ts_config,
)
from docuseek.search.postgres.statistics import common_lexemes, table_statistics
from docuseek.search.postgres.typos import typo_candidates
from docuseek.search.query import ParsedQuery, parse, tsquery_text

RANK_NORMALIZATION = 32  # rank / (rank + 1): scores in [0, 1)
# Short texts come back whole; longer ones as up to two fragments around the matches
# (fragment mode alone would cut a short title down to the matching word).
SHORT_TEXT_CHARS = 200
# ts_headline parses all the text it is given: a page of long documents (broad queries
# rank the ones repeating the words first) took tens of milliseconds to highlight at 1M
# documents (see bench/notes.md, 'Design decisions: highlights of long fields').
HIGHLIGHT_MAX_CHARS = 3_000
HEADLINE_WHOLE = "StartSel=<mark>, StopSel=</mark>, HighlightAll=true"
HEADLINE_FRAGMENTS = (
    "StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=25, MinWords=8,"
    ' FragmentDelimiter=" … "'
)
RANKED, TIERED = "r", "t"  # cursor tags of the two relevance modes
RANKED_TIER = 2  # a tiered cursor's tier: ranked candidates, then top fields (1), the rest (0)
PAGE_ROW = "#page"  # _facets: a row of the first tiered page, not a facet value
TSQUERY_ROW = "#tsquery"  # _facets: the row of the query as PostgreSQL parsed it
STATE_PENDING, STATE_PAGES = "state_pending_tasks", "state_has_pages"  # _page's columns
# _tier_ids: how a big tier is walked along the primary key.
WALK_SETTINGS = (
    "enable_bitmapscan = off",
    "enable_seqscan = off",
    "max_parallel_workers_per_gather = 0",
)


class _Params:
    """A search's parameters, as psycopg placeholders (a literal % would have to be %%)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, sql_type: str | None = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"CAST(%({name})s AS {sql_type})" if sql_type else f"%({name})s"


# An impact level's rows read before its filters are checked on them, at most: below this
# that is cheaper than the bitmap of every row a filter admits.
LEVEL_PROBE_ROWS = 2_000
# A row checked for a prefix costs about this many postings of the prefix read from the index
# (_words_before_prefix).
PREFIX_CHECK_COST = 5
# A tier of words with alternatives is walked in id order only when the planner expects this
# many times exact_limit rows (_tier_ids).
ALTERNATIVES_SLACK = 5
# A query with a phrase ranks at most this many rows first: its words go together, so the
# rows repeating them most already hold ts_rank's top (_ranked_candidates).
PHRASE_RANKED_ROWS = 200
# A filtered one-word walk counts the first weight's impact levels in batches ending at
# these (_level_sizes_at_once): the strictest five, then the rest.
LEVEL_BATCH_ENDS = (4, len(IMPACT_LEVELS) - 1)
# _completion_proof: the prefix's completions it looks for, the most common first, and the
# range of their expected matches (times exact_limit) in which it is tried. Below, the
# proof mostly fails and its statement is wasted; above, the matches are so dense that
# reading rows until exact_limit + 1 of them turn up is cheap already, where the
# completions' rows in the index would all be collected first.
PROOF_COMPLETIONS = 2
COMPLETION_PROOF_EXPECTED = (0.4, 50.0)
# _top_field_proof: it is tried when ANALYZE's statistics expect at least this many times
# exact_limit top-field matches, and when reading them from the index, at this cost each
# (in rows of the whole match read and checked), costs less than counting the matches.
TOP_PROOF_EXPECTED = 0.5
TOP_POSTING_COST = 0.35


class Search:
    """One search: builds its SQL from the query, runs it on one connection."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        collection: Collection,
        table: str,
        query: SearchQuery,
        *,
        exact_limit: int,
    ) -> None:
        self.exact_limit = exact_limit  # more matches than this are tiered, not ranked
        self.conn = conn
        self.collection = collection
        self.table = table
        self.query = query
        self.params = _Params()
        self.has_q = bool(query.q.strip())
        # Joined words as phrases of their parts, as the index has them.
        q_text = split_joined(query.q)
        self.parsed = parse(
            q_text,
            collection.search_settings,
            prefix=query.prefix,
            typo=query.typo,
            first_letter_typos=query.first_letter_typos,
        )
        self.typo_ranked = False  # ranked as exact matches first, then typo matches
        self.exact_word_params: list[str] = []  # _word_params
        self.near_word_params: list[str] = []  # _word_params
        self.has_phrase = any(t.word is None for t in self.parsed.terms)  # quoted or joined
        self.pair_filter = ""  # the condition on a phrase's word pairs, when it has one
        self.tsquery: str | None = None  # _tsquery
        # The query's words but the prefix being typed, against a tsvector column, when its
        # rows are to be checked for the prefix (_words_before_prefix).
        self.words_first: str | None = None
        self.words_first_columns: set[str] = set()
        # The words but the prefix being typed (to_tsquery's text) and the planner's
        # estimate of their matches (_completion_proof).
        self.words_before_prefix: tuple[str, float] | None = None
        self.typo_lexemes: dict[int, list[str]] = {}  # typo_candidates, when the query has typos
        where = ["live"]
        pair_filter: str | None = None  # _pair_filter
        one_pair = False
        # The query's words against a tsvector column: tsv, or tsv_top for the top tier.
        self.words_match = f"{{column}} @@ {query_sql(self.collection)}"
        if self.has_q:
            weights = self._typo_weights()
            typos = self.parsed.has_typos and weights is not None
            candidates = typo_candidates(conn, table, collection, self.parsed) if typos else {}
            self.typo_lexemes = {i: [lx for lx, _ in c] for i, c in candidates.items()}
            # to_tsquery's spelling of each candidate (typos.typo_candidates).
            typo_words = {i: [w for _, w in c] for i, c in candidates.items()}
            self.params.values["q"] = tsquery_text(self.parsed, typo_words, weights or "")
            if typo_words:
                self.params.values["qx"] = tsquery_text(self.parsed)
                self.typo_ranked = True
                self._word_params(typo_words, weights or "")
            complete = False
            if collection.index_phrases and '"' in q_text:
                pair_filter, complete, one_pair = self._pair_filter()
            if complete:
                # Every word is in a pair: the pairs alone pick the candidates. `IS TRUE`
                # keeps the planner from also walking the words' long posting lists in the
                # index (see bench/notes.md, 'Design decisions: phrase word pairs').
                self.words_match = f"({self.words_match}) IS TRUE"
            where.append(self.words_match.format(column="tsv"))
            if pair_filter:
                where.append(pair_filter)
                self.pair_filter = pair_filter
            else:
                self._words_before_prefix(typo_words, weights or "")
        filters = [self._filter(f) for f in query.filters]
        self.filters = " AND ".join(filters)  # "" without filters
        self.live_filtered = " AND ".join(["live", *filters])  # the match less its words
        # Impact levels by their rows before the filters (_level_size): the widest known
        # to hold few, the narrowest known to hold many.
        self.few_level_rows, self.many_level_rows = -1, sys.maxsize
        where += filters
        self.match = " AND ".join(where)
        # A phrase of two words: its matches counted by their pair alone (_many_pair_rows).
        self.pair_match = ""
        if one_pair and pair_filter:
            # Overlap, the same as containment for one element, needs no recheck of the
            # row's pairs in GIN's array operator class.
            overlap = pair_filter.replace("pairs @>", "pairs &&", 1)
            self.pair_match = " AND ".join(["live", overlap, *filters])
        # The statements that read every match up to exact_limit + 1 (counting them, ranking
        # them all) may find them through the other words than the prefix being typed.
        self.all_match = self.match
        if self.words_first and "tsv" in self.words_first_columns:
            words = self.words_match.format(column="tsv")
            first = self.words_first.format(column="tsv")
            self.all_match = self.match.replace(words, f"({words}) IS TRUE AND {first}", 1)
        self.capped_count: int | None = None  # matches counted up to exact_limit + 1
        self.one_word = False  # the query is one plain word (set by _impact_levels)
        self.top_level = False  # its last level adds the top-field matches (_impact_levels)
        # The first impact level holding every top-field match (_impact_levels): from there
        # on the top tier is empty.
        self.top_from_level: int | None = None
        self.levels: list[str] | None = None  # _impact_levels, once computed
        # Impact level → its first page ranked, when the statement counting it ranked it.
        self.ranked_levels: dict[int, list[tuple[str, float]]] = {}
        self.state: CollectionState | None = None  # read with the last page (_page)

    def run(self) -> SearchResult:
        query = self.query
        sort = effective_sort(query)
        relevance_first = self.has_q and sort[0] == SortKey("_score", True)
        total, exact = None, True
        tier_page: list[tuple[str, bool]] | None = None  # a first tiered page, from facets
        if query.facets:
            # A ranked tier is picked by its own statements, not from the facets' rows. The
            # query's parse tells whether it may have one without the statement that
            # computes its impact levels, which a query ranked exactly never needs.
            first_page = (
                relevance_first and query.after is None and not self._may_have_impact_levels()
            )
            total, facets, tier_page = self._facets(first_page)
            self.capped_count = min(total, self.exact_limit + 1)  # no second count
        else:
            facets = {}
        if not relevance_first:
            rows, ranked = self._sorted_page(sort), True
        elif query.after is None and self.capped_count is None:
            first = self._ranked_first_page()  # None: too many matches to rank them all
            rows, ranked = (first, True) if first is not None else (self._tiered_page(), False)
        else:
            ranked = self._relevance_mode() == RANKED
            if ranked:
                rows = self._ranked_page()
            elif tier_page is not None and not self._impact_levels():
                rows = self._picked_page([(i, int(top), None) for i, top in tier_page], -1)
            else:
                rows = self._tiered_page()
        if total is None:
            total, exact = self._capped_total()
        hits = self._hits(rows)
        return SearchResult(
            hits=hits,
            total=total,
            facets=facets,
            has_more=len(rows) > query.limit,
            total_exact=exact,
            exact_order=ranked,
            state=self.state,
        )

    def _rank(self, column_name: str = "tsv") -> str:
        rank = f"ts_rank({column_name}, {query_sql(self.collection)}, {RANK_NORMALIZATION})"
        if not self.typo_ranked:
            return rank
        # Documents matching the query without typos rank above all those matching only
        # through a typo (ts_rank with this normalization stays below 1), in the order the
        # query without typos gives them.
        exact_query = query_sql(self.collection, "qx")
        exact = f"ts_rank({column_name}, {exact_query}, {RANK_NORMALIZATION})"

        # Among the others, those with more of the words as typed come first, then those
        # with more of them at most one typo away (Meilisearch ranks by the typos a match
        # needed): a word matched as typed adds 1, one within a typo adds 1 / top, and
        # ts_rank, below 1, orders what is left.
        def held(names: list[str]) -> str:
            return "".join(
                f"({column_name} @@ {query_sql(self.collection, name)})::int + " for name in names
            )

        top = 1 + len(self.exact_word_params)
        # A real, as ts_rank is: the sum would be a double precision, which the cursor's
        # real cannot hold, so the next page would start before the last hit.
        return (
            f"CAST(CASE WHEN {column_name} @@ {exact_query} THEN {top} + {exact}"
            f" ELSE {held(self.exact_word_params)}"
            f"({held(self.near_word_params)}{rank}) / {top} END AS real)"
        )

    def _word_params(self, typo_words: dict[int, list[str]], weights: str) -> None:
        """For a query of one group of several words, some with typo candidates: each of
        those words as typed, and within one typo of how it was typed, as parameters of
        their own (the ranking counts them). A candidate is within one typo when its
        spelling is (a word one edit away that stems to it, or the lexeme itself): a stem
        one edit from the typed word's stem can belong to a word three edits from it,
        `internet` for `interseted`, where `interested` is one (bench/notes.md, 'Design
        decisions: typo matches ranked by the words within one typo')."""
        groups = self.parsed.groups
        if len(groups) != 1 or len(groups[0]) < 2:
            return
        for i, term in enumerate(groups[0]):
            if typo_words.get(i):
                word = ParsedQuery(((term,),))
                typed = term.text.lower()
                near = [w for w in typo_words[i] if OSA.distance(typed, w) <= 1]
                self.params.values[f"qx{i}"] = tsquery_text(word)
                self.params.values[f"qn{i}"] = tsquery_text(word, {0: near}, weights)
                self.exact_word_params.append(f"qx{i}")
                self.near_word_params.append(f"qn{i}")

    def _typo_weights(self) -> str | None:
        """The weights typo candidates may match in: "" for any, else those of no field in
        `disable_on_fields` (a tsvector knows a word's weight, not its field); None when
        that leaves none."""
        disabled = set(self.collection.search_settings.typo_tolerance.disable_on_fields)
        fields = self.collection.text_fields
        off = {f.weight for f in fields if f.name in disabled}
        if not off:
            return ""
        allowed = "".join(sorted({f.weight for f in fields} - off))
        return allowed or None

    def _words_before_prefix(self, typo_words: dict[int, list[str]], weights: str) -> None:
        """For a query whose last word is being typed and which requires other words: sets
        `words_first` to the condition on those words alone, and `words_first_columns` to
        the tsvector columns whose matches are better found through them. The index reads
        a prefix (`'docu':*`) as the postings of every indexed word it begins, `document`
        and `documentation` included, before it can intersect them with anything; when the
        other words' rows are few enough, checking each of them for the prefix costs less
        (bench/notes.md, 'Design decisions: a prefix checked on the other words' rows')."""
        groups = self.parsed.groups
        if len(groups) != 1 or not any(t.prefix for t in groups[0]):
            return
        words = tsquery_text(self.parsed, typo_words, weights, plain_words_only=True)
        if not words:
            return
        prefix = self._typed_prefix()
        config = ts_config(self.collection)
        columns = ["tsv", "tsv_top"] if Layout(self.collection).top_fields else ["tsv"]
        # The planner's estimates, in one statement: live rows, then per column the rows
        # of the other words and of the prefix.
        branches = [f"SELECT 1 FROM {self.table} WHERE live"] + [
            f"SELECT 1 FROM {self.table} WHERE live AND {c} @@ to_tsquery('{config}', %({p})s)"
            for c in columns
            for p in ("w", "p")
        ]
        plan = self._scalar(
            "EXPLAIN (FORMAT JSON) " + " UNION ALL ".join(branches), {"w": words, "p": prefix}
        )
        estimates = [max(1.0, float(b["Plan Rows"])) for b in plan[0]["Plan"].get("Plans", [])]
        if len(estimates) != len(branches):
            return
        rows = estimates[0]
        chosen: set[str] = set()
        for i, column_name in enumerate(columns):
            words_rows, prefix_rows = estimates[1 + 2 * i : 3 + 2 * i]
            # An estimate of one row is also what words that are all stop words get: their
            # tsquery is empty and matches nothing, so they cannot stand for the query.
            if column_name == "tsv" and words_rows <= 1:
                return
            if column_name == "tsv":
                self.words_before_prefix = (words, words_rows)
            # Rows the check reads before it has exact_limit + 1 matches (the prefix taken
            # to be spread evenly), against the prefix's postings, each read much faster.
            checked = min(words_rows, (self.exact_limit + 1) * rows / prefix_rows)
            if checked * PREFIX_CHECK_COST <= prefix_rows:
                chosen.add(column_name)
        if chosen:
            self.words_first = f"{{column}} @@ to_tsquery('{config}', {self.params.add(words)})"
            self.words_first_columns = chosen

    # -- modes -----------------------------------------------------------------------------

    def _relevance_mode(self) -> str:
        after = self.query.after
        if after is not None:
            if not after or (after[0], len(after)) not in ((RANKED, 3), (TIERED, 5)):
                raise InvalidCursor("cursor does not match this query's sort")
            if after[0] == RANKED and not (_fits(after[1], "real") and _fits(after[2], "text")):
                raise InvalidCursor("cursor does not match this query's sort")
            if after[0] == TIERED:
                _, tier, level, score, last_id = after
                if not (
                    tier in (0, 1, RANKED_TIER)
                    and type(level) is int
                    and (score is None or type(score) in (int, float))
                    and (score is not None) == (tier == RANKED_TIER)
                    and isinstance(last_id, str)
                ):
                    raise InvalidCursor("cursor does not match this query's sort")
            return str(after[0])
        return RANKED if self._count_capped() <= self.exact_limit else TIERED

    def _ranked_page(self) -> list[dict[str, Any]]:
        where = "TRUE"
        if self.query.after is not None:
            _, score, last_id = self.query.after
            s, i = self.params.add(score, "real"), self.params.add(last_id, "text")
            where = f"(score < {s} OR (score = {s} AND id > {i}))"
        # OFFSET 0 keeps the subquery from being flattened, so ts_rank runs once per row.
        sql = (
            f"SELECT id, score, '{RANKED}' AS s0, score AS s1, id AS s2 FROM"
            f" (SELECT id, {self._rank()} AS score FROM {self.table} WHERE {self.all_match}"
            " OFFSET 0) m"
            f" WHERE {where} ORDER BY score DESC, id LIMIT {self.query.limit + 1}"
        )
        return self._page(sql, "s1 DESC, s2", page_score=False)

    def _ranked_first_page(self) -> list[dict[str, Any]] | None:
        """Count the matches (up to exact_limit + 1) and, when there are no more than
        exact_limit, rank them and return the first page: one statement, where counting
        first and ranking next took two round trips for every query with few matches.
        The count comes back on a row of its own; None when the matches are too many
        (then nothing was ranked)."""
        limit = self.exact_limit
        if self._many_pair_rows():
            return None
        # The candidates carry their tsvector: ranked from there, not looked up again by id,
        # which costs a key lookup per candidate (bench/notes.md, 'Design decisions: ranked
        # first page').
        candidates = f"SELECT id, tsv FROM {self.table} WHERE {self.all_match} LIMIT {limit + 1}"
        proven = ""
        proof = self._pair_proof() or self._completion_proof() or self._top_field_proof()
        if proof:
            # Some of the matches, found a cheaper way: more than exact_limit of them spare
            # the scan of the rest, which does not start. Fewer, and they are all the
            # matches the proof can find: the rest are the other matches (told apart by
            # id, where the proof's condition would read each row again), and only as many
            # as exact_limit + 1 needs. A proof that falls short by a few leaves a few to
            # find, not every match to count again.
            proven = (
                f"p AS MATERIALIZED (SELECT id, tsv FROM {self.table} WHERE {proof}"
                f" LIMIT {limit + 1}),"
                f" rest AS MATERIALIZED (SELECT id, tsv FROM {self.table}"
                f" WHERE (SELECT count(*) FROM p) <= {limit} AND {self.all_match}"
                f" AND id NOT IN (SELECT id FROM p) LIMIT (SELECT {limit + 1} - count(*) FROM p)), "
            )
            candidates = "SELECT id, tsv FROM p UNION ALL SELECT id, tsv FROM rest"
        ranked = (
            f"SELECT c.id, {self._rank('c.tsv')} AS score FROM c WHERE (SELECT n FROM n) <= {limit}"
            f" ORDER BY score DESC, c.id LIMIT {self.query.limit + 1}"
        )
        # The count's row also brings the parsed query, which a tiered search needs next.
        sql = (
            f"WITH {proven}c AS MATERIALIZED ({candidates}), n AS (SELECT count(*) AS n FROM c)"
            f" SELECT NULL::text AS id, NULL::real AS score, '{RANKED}' AS s0,"
            f" NULL::real AS s1, NULL::text AS s2, n AS capped,"
            f" {query_sql(self.collection)}::text AS tsquery FROM n"
            f" UNION ALL SELECT id, score, '{RANKED}', score, id, NULL, NULL FROM ({ranked}) r"
        )
        rows = self._page(sql, "s1 DESC, s2", page_score=False)
        count = next(r for r in rows if r["capped"] is not None)
        self.capped_count, self.tsquery = int(count["capped"]), str(count["tsquery"])
        if self.capped_count > limit:
            return None
        return [r for r in rows if r["capped"] is None]

    def _pair_proof(self) -> str:
        """For a query of two plain words (in a collection with index_phrases, without
        filters): its match on the rows holding the words side by side, in either order,
        found through their pairs; "" for other queries. Two common words are a long read
        of both posting lists, where the rows holding them side by side are often more
        than exact_limit (bench/notes.md, 'Design decisions: two words proven broad by
        their pairs')."""
        # Not with a prefix being typed: the rows of the pair would each be checked for it,
        # and may be many more than its matches.
        terms = self.parsed.terms
        if (
            not self.collection.index_phrases
            or self.filters
            or len(self.parsed.groups) != 1
            or len(terms) != 2
            or any(t.word is None or t.negated or t.prefix for t in terms)
        ):
            return ""
        words = self.params.add(" ".join(t.text for t in terms))
        lexemes = f"tsvector_to_array(to_tsvector('{ts_config(self.collection)}', {words}))"
        # Both orders' hashes, as word_pairs makes them; none unless the words stem to two
        # lexemes (a stop word leaves one).
        pairs = (
            "(SELECT ARRAY[hashtext(l[1] || ' ' || l[2]), hashtext(l[2] || ' ' || l[1])]"
            f" FROM (SELECT {lexemes} AS l) AS x WHERE cardinality(l) = 2)"
        )
        return f"pairs && {pairs} AND {self._checked_on_rows()}"

    def _top_field_proof(self) -> str:
        """For a query of one word (or one word and its typo and synonym alternatives),
        without filters, in a collection with top fields: the rows whose top fields match
        it, which are matches without a check; "" for other queries. A common word's
        count reads its rows' whole tsvectors, thousands of them, before it has
        exact_limit + 1; the top fields' tsvector is short and its matches, when they are
        more than exact_limit, prove the same in a fraction of that (bench/notes.md,
        'Design decisions: one word proven broad by its top fields')."""
        terms = self.parsed.terms
        if (
            self.filters  # the statistics cannot tell how many top-field rows they admit
            or len(terms) != 1
            or terms[0].negated
            or terms[0].prefix
            or terms[0].word is None
            or not Layout(self.collection).top_fields
        ):
            return ""
        statistics = table_statistics(self.conn, self.table)
        lexemes = set(self.typo_lexemes.get(0, []))
        stem = _likely_stem(terms[0].word.lower(), statistics.shares("tsv"))
        if stem:
            lexemes.add(stem)
        limit = self.exact_limit + 1
        top_rows = statistics.rows_holding("tsv_top", lexemes)
        all_rows = statistics.rows_holding("tsv", lexemes)
        # A word ANALYZE did not find common has few matches, counted at once; a word in
        # most rows is counted in a few rows' reads, where its top-field postings are many.
        if top_rows < TOP_PROOF_EXPECTED * self.exact_limit or not all_rows:
            return ""
        if TOP_POSTING_COST * top_rows >= limit * statistics.rows / all_rows:
            return ""
        top_match = self.words_match.format(column="tsv_top")
        return self.match.replace(self.words_match.format(column="tsv"), top_match, 1)

    def _completion_proof(self) -> str:
        """For a query of words and a prefix being typed (without filters): its match on
        the rows holding the words and one of the prefix's most common completions, found
        through the index; "" when the planner's statistics do not expect those to be
        more than exact_limit, or expect so many that the matches are dense enough to
        count directly. A common prefix's postings are long and rows of the other words
        are often checked by the thousand before a thousand matches turn up; the rows of
        `compress & option` are what proves `compression opt` broad, in a fraction of
        that (bench/notes.md, 'Design decisions: a prefix proven broad by its
        completions')."""
        if self.filters or self.words_before_prefix is None:
            return ""
        words, words_rows = self.words_before_prefix
        typed = next(t for t in self.parsed.groups[0] if t.prefix).text.lower()
        completions = [
            (lexeme, share)
            for lexeme, share in common_lexemes(self.conn, self.table)
            if lexeme.startswith(typed) and PLAIN_LEXEME.fullmatch(lexeme)
        ][:PROOF_COMPLETIONS]
        # The words' rows holding a completion, taking the words and the completions to
        # be independent, as the planner does.
        expected = words_rows * sum(share for _, share in completions)
        low, high = COMPLETION_PROOF_EXPECTED
        if not completions or not low * self.exact_limit <= expected <= high * self.exact_limit:
            return ""
        either = " | ".join(quote_literal(lexeme) for lexeme, _ in completions)
        config = ts_config(self.collection)
        subset = (
            f"(to_tsquery('{config}', {self.params.add(words)})"
            f" && {self.params.add(either, 'tsquery')})"
        )
        checked = self._checked_on_rows()
        if any(t.negated for t in self.parsed.groups[0]):
            return f"tsv @@ {subset} AND {checked}"  # the words leave the negations out
        # The words and a completion the prefix matches are a match, without reading the
        # row's whole tsvector to check it; a completion the prefix does not match leaves
        # the check on every row.
        completed = self._prefix_matches([lexeme for lexeme, _ in completions])
        words_checked = f"({self.words_match.format(column='tsv')}) IS TRUE"
        either_checked = f"({completed} OR {words_checked})"
        return f"tsv @@ {subset} AND {checked.replace(words_checked, either_checked, 1)}"

    def _typed_prefix(self) -> str:
        """The last word, being typed, as to_tsquery's text (`'docu':*`)."""
        return tsquery_text(ParsedQuery((tuple(t for t in self.parsed.groups[0] if t.prefix),)))

    def _prefix_matches(self, lexemes: list[str]) -> str:
        """Whether the prefix being typed matches each of these lexemes, as PostgreSQL
        stems it (`happy:*` is `happi:*`, which the lexeme `happyland` does not begin): a
        condition PostgreSQL evaluates once per statement."""
        prefix = self.params.add(self._typed_prefix())
        return (
            "(SELECT bool_and(array_to_tsvector(ARRAY[l])"
            f" @@ to_tsquery('{ts_config(self.collection)}', {prefix}))"
            f" FROM unnest(CAST({self.params.add(lexemes)} AS text[])) AS l)"
        )

    def _tiered_page(self) -> list[dict[str, Any]]:
        """The best-rewarded matches ranked exactly, then the other top-tier matches, then
        the rest, each tier in id order.

        The ranked tier (`_impact_levels`) holds the matches whose query words all have
        impact tokens at the highest level that gives a page of them; ts_rank orders those
        few, and the walk of the tiers below leaves them out. Each tier is its own
        statement so it gets its own plan: walking the primary key and stopping at the
        page is right for a big tier, a bitmap and a sort for a small one, and PostgreSQL
        misjudges phrase selectivity badly, both ways. So each tier's size is checked and
        the plan chosen explicitly (`_tier_ids`; see bench/notes.md, 'Design decisions:
        tier walks' and 'broad query ranking')."""
        limit = self.query.limit + 1
        after = self.query.after
        levels = self._impact_levels()
        picked: list[tuple[str, int, float | None]] = []  # (id, tier, score) in page order
        if after is None:
            level, ranked = self._ranked_candidates(levels)
        else:
            level = int(after[2])
            if not -1 <= level < len(levels):
                raise InvalidCursor("cursor does not match this query's sort")
            ranked = []
            if int(after[1]) == RANKED_TIER and level >= 0:
                ranked = self._candidate_page(level, after[3], after[4])
        picked += [(doc_id, RANKED_TIER, score) for doc_id, score in ranked]
        skip = ""  # the ranked tier's rows, left out of the tiers below
        if level >= 0:
            skip = f" AND NOT coalesce({levels[level]}, false)"
        top_match = self.words_match.format(column="tsv_top")
        # (tier, condition): without a negated word the top tier's match implies the full
        # one, so it can skip the second (large) index scan; `fox -dog` must still look
        # for `dog` in every field.
        tiers: list[tuple[int, str]] = []
        if Layout(self.collection).top_fields:
            if self.parsed.has_negation:
                top = f"{self.match} AND {top_match}"
            else:
                top_words = top_match
                if self.words_first and "tsv_top" in self.words_first_columns:
                    # a prefix, checked on the rows of the other words
                    first = self.words_first.format(column="tsv_top")
                    top_words = f"({top_match}) IS TRUE AND {first}"
                top = self.match.replace(self.words_match.format(column="tsv"), top_words, 1)
            # A ranked tier from a level holding every top-field match leaves none to walk
            # (a walk finding nothing would read the whole table).
            if self.top_from_level is None or level < self.top_from_level:
                tiers.append((1, top + skip))
            tiers.append((0, f"{self.match} AND NOT coalesce({top_match}, false){skip}"))
        else:
            tiers.append((0, self.match + skip))
        for tier, condition in tiers:
            if len(picked) >= limit:
                break
            start = "TRUE"  # where the tier's walk in id order starts
            if after is not None:
                last_tier, last_id = int(after[1]), after[4]
                if last_tier < tier:  # a tier already paged through
                    continue
                if last_tier == tier:
                    start = f"id > {self.params.add(last_id, 'text')}"
            # On a first page the whole match has more than exact_limit rows (that is why
            # it is tiered), and the tiers above, which did not fill the page, hold the rows
            # picked so far: the rest is the whole match less those few, so it is walked
            # at once rather than first collected to learn its size.
            exact_limit = self.exact_limit
            known_big = (
                after is None and not tier and exact_limit + 1 - len(picked) > exact_limit // 2
            )
            ids = self._tier_ids(condition, start, limit - len(picked), known_big)
            picked += [(doc_id, tier, None) for doc_id in ids]
        return self._picked_page(picked[:limit], level)

    def _may_have_impact_levels(self) -> bool:
        """Whether _impact_levels may find words the query requires: not for an OR of
        parts or a query of exclusions only (False is certain, True a guess)."""
        groups = self.parsed.groups
        return len(groups) == 1 and any(not t.negated for t in groups[0])

    def _impact_levels(self) -> list[str]:
        """Conditions on the rows' impact tokens, strictest first: level i holds the rows
        where every plain word of the query has a token at one of the first i + 1
        (weight, level) steps, the collection's weights from the highest, each from its
        top impact level down. For one word, after the top weight's steps comes one more:
        the word anywhere in a top-weight field, since a word held once there has no token
        (a token needs two positions) yet outscores it repeated in lower-weight fields
        only. Empty when the query has no plain word it requires."""
        if self.levels is None:
            self.levels = self._impact_level_conditions()
        return self.levels

    def _impact_level_conditions(self) -> list[str]:
        if not self.has_q:
            return []
        tsquery = self._tsquery()
        words = required_lexemes(tsquery)
        if not words:
            return []
        self.one_word = tsquery.strip() == quote_literal(words[0])  # and nothing else
        weights = sorted({f.weight for f in self.collection.text_fields})
        steps = [(w, level) for w in weights for level in range(len(IMPACT_LEVELS), 0, -1)]
        # (steps taken, the top-weight fields' matches included)
        stages = [(i + 1, False) for i in range(len(IMPACT_LEVELS))]
        # One word only: for several, the ranked tier is as many rows as exact_limit allows,
        # and the extra condition on every wider level cost them a fifth to two fifths of
        # their throughput (bench/notes.md, 'Design decisions: impact level sizes').
        has_top = self.one_word and bool(Layout(self.collection).top_fields)
        if has_top:
            self.top_from_level = len(stages)
            stages.append((len(IMPACT_LEVELS), True))
        stages += [(i + 1, has_top) for i in range(len(IMPACT_LEVELS), len(steps))]
        in_top = [
            f"tsv_top @@ {self.params.add(quote_literal(word), 'tsquery')}" if has_top else ""
            for word in words
        ]
        conditions: list[str] = []
        for taken, top in stages:
            # A weight's tokens from its lowest level taken (impact_tokens goes up from there).
            lowest: dict[str, int] = {}
            for w, level in steps[:taken]:
                lowest[w] = min(level, lowest.get(w, level))
            parts = []
            for word, word_in_top in zip(words, in_top, strict=True):
                tokens = [t for w, level in lowest.items() for t in impact_tokens(word, w, level)]
                part = f"impacts && {self.params.add(sorted(tokens), 'text[]')}"
                parts.append(f"({part} OR {word_in_top})" if top else part)
            conditions.append("(" + " AND ".join(parts) + ")")
        # Not for phrases, whose levels are wide, nor a prefix being typed, whose top-field
        # matches the index finds by reading every posting of the words it begins
        # (bench/notes.md, 'Design decisions: several words' top-field matches ranked').
        self.top_level = (
            not self.one_word
            and not self.has_phrase
            and not any(t.prefix for t in self.parsed.terms)
            and bool(Layout(self.collection).top_fields)
        )
        if self.top_level:
            # Several words: a word held once has no token, yet the query's words each once
            # in a title outrank most repetitions in lower fields, and ts_rank ties them at
            # its top. The widest level with every top-field match, when that is few
            # enough to rank (bench/notes.md, 'Design decisions: several words' top-field
            # matches ranked').
            self.top_from_level = len(conditions)
            conditions.append(f"({conditions[-1]} OR tsv_top @@ {query_sql(self.collection)})")
        return conditions

    def _ranked_candidates(self, levels: list[str]) -> tuple[int, list[tuple[str, float]]]:
        """The level of the ranked tier and its first page, ranked by ts_rank; (-1, [])
        when no level holds a match.

        One plain word: the strictest level holding a page of rows; every row below it scores
        less, so the page is ts_rank's own. Otherwise ts_rank rewards the words' proximity
        and saturates (many rows tie at its top, in id order), so the ranked tier is the
        widest level of at most exact_limit rows (PHRASE_RANKED_ROWS for a query with a
        phrase: bench/notes.md, 'Design decisions: a phrase's ranked tier'). Levels are
        sized by their tokens and filters alone (an upper bound: the words are checked
        once, when ranking)."""
        if not levels:
            return -1, []
        limit, cap = self.query.limit + 1, self.exact_limit
        if self.has_phrase:
            cap = min(cap, PHRASE_RANKED_ROWS)
        sizes: dict[int, int] = {-1: 0}  # level -> rows, counted up to cap + 1

        def size(i: int) -> int:
            if i not in sizes:
                sizes[i] = self._level_size(levels, i, cap)
            return sizes[i]

        def fits(i: int) -> bool:
            # A level the planner expects to exceed cap does: for words apart from a
            # phrase its estimate falls short, and counting a level of many rows is the
            # dearest statement of the walk (bench/notes.md, 'Design decisions: impact
            # level sizes').
            expected = None
            if i not in sizes and not self.has_phrase:
                expected = self._estimated_rows(f"{self.live_filtered} AND {levels[i]}")
            return (expected is None or expected <= cap) and size(i) <= cap

        chosen = -1
        if self.one_word:  # from the top: the level holding a page is usually near it
            for i in range(len(levels)):
                if self.filters and i not in sizes:
                    sizes.update(self._level_sizes_at_once(levels, i, cap))
                if size(i) > cap:
                    break
                chosen = i
                if size(i) >= limit:
                    break
        else:  # sizes grow with the level: bisect for the widest one within cap
            low, high = -1, len(levels) - 1
            # Several words seldom fill the widest level: when the planner expects them not
            # to, it is counted first, and then it is the one (bench/notes.md, 'Design
            # decisions: impact level sizes'). Its estimate falls short, never far over;
            # for the words of a phrase, which go together, too far short to go by.
            # The last level of several words adds the top-field matches: when the planner
            # expects more than cap rows there, the widest level before it is tried next.
            for _ in range(2 if self.top_level else 1):
                widest = f"{self.live_filtered} AND {levels[high]}"
                if self.has_phrase or self._estimated_rows(widest) > cap:
                    if not self.top_level or high < len(levels) - 1:
                        break
                elif not self.filters:
                    # Counted and ranked in one statement, which builds the level's bitmap
                    # once: it is nearly always the one.
                    sizes[high], ranked = self._count_and_rank_level(levels, high, cap)
                    if sizes[high] <= cap:
                        return (high, ranked) if sizes[high] else (-1, [])
                elif size(high) <= cap:
                    low = high
                    break
                high -= 1
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(middle) else (low, middle - 1)
            chosen = low
        if size(chosen) == 0:
            return -1, []
        if chosen in self.ranked_levels:
            return chosen, self.ranked_levels[chosen]
        sql = (
            f"WITH c AS MATERIALIZED (SELECT id, tsv FROM {self.table}"
            f" WHERE {self._checked_on_level(chosen)} AND {levels[chosen]})"
            f" SELECT id, {self._rank('tsv')} AS score FROM c ORDER BY score DESC, id LIMIT {limit}"
        )
        return chosen, [(str(r[0]), float(r[1])) for r in self._rows(sql)]

    def _count_and_rank_level(
        self, levels: list[str], level: int, cap: int
    ) -> tuple[int, list[tuple[str, float]]]:
        """The rows of an impact level counted up to cap + 1 (as _level_size does without
        filters) and, when they are no more than cap, its first page ranked by ts_rank (as
        _ranked_candidates does); the count alone otherwise."""
        sql = (
            f"WITH c AS MATERIALIZED (SELECT id, tsv, ({self._checked_on_level(level)}) AS ok"
            f" FROM {self.table} WHERE {self.live_filtered} AND {levels[level]}"
            f" LIMIT {cap + 1}), n AS (SELECT count(*) AS n FROM c)"
            " SELECT NULL::text AS id, NULL::real AS score, n FROM n UNION ALL"
            f" (SELECT id, {self._rank('tsv')}, NULL FROM c WHERE ok AND (SELECT n FROM n) <= {cap}"
            f" ORDER BY 2 DESC, id LIMIT {self.query.limit + 1})"
        )
        rows = self._rows(sql)
        count = next(int(r[2]) for r in rows if r[2] is not None)
        return count, [(str(r[0]), float(r[1])) for r in rows if r[2] is None]

    def _level_size(self, levels: list[str], i: int, cap: int) -> int:
        """The rows of impact level i that meet the filters, counted up to cap + 1.

        With filters, a level's rows are first read from the impact index alone and the
        filters checked on each: the planner, misjudging how few rows a level holds,
        would otherwise build the bitmap of every row a filter admits, for every level
        probed (bench/notes.md, 'Design decisions: impact level sizes'). Past
        LEVEL_PROBE_ROWS rows that costs more than the bitmap, and so does every wider
        level (they are nested): those are counted with the filters in the index scan."""
        probed = self._probed_level_size(levels, i, cap)
        if probed is not None:
            return probed
        if self.filters and self.one_word:
            # Counted through the filters' bitmap, and ranked in the same statement, which
            # builds that bitmap once: the walk of one word's levels stops at the first
            # holding a page, which is the ranked tier, so a ranking is wasted only on a
            # level holding less than a page.
            size, self.ranked_levels[i] = self._count_and_rank_level(levels, i, cap)
            return size
        return self._count_where(f"{self.live_filtered} AND {levels[i]}", cap)

    def _probed_level_size(self, levels: list[str], i: int, cap: int) -> int | None:
        """With filters, the rows of impact level i that meet them (counted up to cap + 1)
        from the level's rows read alone, when it holds fewer than LEVEL_PROBE_ROWS; None
        when it holds more, or without filters."""
        if not self.filters or i >= self.many_level_rows:
            return None
        sql = (
            f"SELECT count(*) FILTER (WHERE hit), count(*) FROM (SELECT ({self.filters})"
            f" IS TRUE AS hit FROM {self.table} WHERE live AND {levels[i]}"
            f" LIMIT {LEVEL_PROBE_ROWS}) AS w"
        )
        hits, seen = self._rows(sql)[0]
        if int(seen) >= LEVEL_PROBE_ROWS:
            self.many_level_rows = i
            return None
        self.few_level_rows = max(self.few_level_rows, i)
        return min(int(hits), cap + 1)

    def _level_sizes_at_once(self, levels: list[str], first: int, cap: int) -> dict[int, int]:
        """One word under filters: the sizes of the levels of a batch from `first` (as
        _level_size counts them), from one read of the widest one's rows, when it holds
        fewer than LEVEL_PROBE_ROWS; otherwise none. The walk from the top would count
        each level in a statement of its own, most of them holding no row of the filters
        (bench/notes.md, 'Design decisions: impact level sizes')."""
        last = next((b for b in LEVEL_BATCH_ENDS if b >= first), None)
        if last is None or last <= first or last >= min(len(levels), self.many_level_rows):
            return {}
        # (Levels past the first weight's add the top-weight matches, read from another
        # column: they are counted one at a time.)
        counts = ", ".join(
            f"count(*) FILTER (WHERE hit AND {levels[i]})" for i in range(first, last + 1)
        )
        sql = (
            f"SELECT count(*), {counts} FROM (SELECT ({self.filters}) IS TRUE AS hit, impacts"
            f" FROM {self.table} WHERE live AND {levels[last]} LIMIT {LEVEL_PROBE_ROWS}) AS w"
        )
        seen, *hits = self._rows(sql)[0]
        if int(seen) >= LEVEL_PROBE_ROWS:
            self.many_level_rows = last
            return {}
        self.few_level_rows = max(self.few_level_rows, last)
        return {first + k: min(int(n), cap + 1) for k, n in enumerate(hits)}

    def _checked_on_rows(self) -> str:
        """The match, checked on rows another condition picks: the query's words, and a
        phrase's word pair, wrapped in `IS TRUE` so the planner does not read their
        posting lists to intersect them with those rows."""
        words = self.words_match.format(column="tsv")
        match = self.match.replace(words, f"({words}) IS TRUE", 1)
        if self.pair_filter:
            match = match.replace(self.pair_filter, f"({self.pair_filter}) IS TRUE", 1)
        return match

    def _checked_on_level(self, level: int) -> str:
        """The match, for the rows of impact level `level`: `IS TRUE` keeps the planner
        from reading the query words' long posting lists, and a phrase's word pair's, as
        it would to intersect them with the level's few rows; the impact tokens pick the
        rows, the rest is only checked on them. So are the filters on a level known to
        hold few rows (_level_size)."""
        match = self._checked_on_rows()
        if self.filters and level <= self.few_level_rows:
            match = match.replace(self.filters, f"({self.filters}) IS TRUE", 1)
        return match

    def _candidate_page(self, level: int, score: Any, last_id: Any) -> list[tuple[str, float]]:
        """The ranked tier's rows after (score, last_id), up to a page of them."""
        s, i = self.params.add(score, "real"), self.params.add(last_id, "text")
        sql = (
            f"SELECT id, score FROM (SELECT id, {self._rank()} AS score FROM {self.table}"
            f" WHERE {self._checked_on_level(level)} AND {self._impact_levels()[level]}"
            " OFFSET 0) m"
            f" WHERE score < {s} OR (score = {s} AND id > {i})"
            f" ORDER BY score DESC, id LIMIT {self.query.limit + 1}"
        )
        return [(str(r[0]), float(r[1])) for r in self._rows(sql)]

    def _picked_page(
        self, picked: list[tuple[str, int, float | None]], level: int
    ) -> list[dict[str, Any]]:
        """The page of a tiered search, from its (id, tier, score) rows in page order."""
        ids = self.params.add([doc_id for doc_id, _, _ in picked], "text[]")
        tiers = self.params.add([tier for _, tier, _ in picked], "int[]")
        scores = self.params.add([score for _, _, score in picked], "real[]")
        sql = (
            f"SELECT id, NULL::real AS score, '{TIERED}' AS s0, tier AS s1, {int(level)} AS s2,"
            f" rank AS s3, id AS s4, n AS page_order"
            f" FROM unnest({ids}, {tiers}, {scores}) WITH ORDINALITY AS m(id, tier, rank, n)"
        )
        return self._page(sql, "page_order", page_score=True)

    def _tier_ids(self, condition: str, start: str, limit: int, known_big: bool) -> list[str]:
        """The first `limit` ids of one tier (rows meeting `condition`) from `start` on,
        in id order.

        A big tier (more than exact_limit rows) is walked along the primary key, stopping
        at the page. A small one is collected whole through the GIN index and sorted: in a
        MATERIALIZED CTE, planned apart from the page's LIMIT, because with it the planner
        bets on finding a few matches early in id order and may walk the whole table
        instead. The planner's estimate says
        "big" reliably for words but underestimates phrases, so a tier it calls small is
        collected up to exact_limit + 1 rows: those rows are the whole tier when there are
        no more, and the walk runs only when there are (one scan of those rows, not a count
        and then a collection). A word with alternatives (typo candidates, synonyms) is
        called big only at ALTERNATIVES_SLACK times exact_limit: the planner guesses each
        rare alternative at a few hundred rows, so a handful of them look big, and walking
        a small tier in id order reads much of the table. For a phrase the estimate is no
        guide at all
        (far too low, more so with word pairs), so rows are first looked at in id order:
        as many as it takes a tier of exact_limit rows, spread evenly, to fill the page.
        A big tier fills it there, and a small one is collected next, rather than
        collecting exact_limit + 1 rows to learn that a tier is big. See bench/notes.md,
        'Design decisions: tier walks'."""
        where = f"{condition} AND {start}"
        big = known_big
        if not known_big and '"' in self.query.q:
            rows = self._scalar(
                "SELECT reltuples FROM pg_class WHERE oid = CAST(%(table)s AS regclass)",
                {"table": self.table},
            )  # -1 before the first analyze
            probe_rows = max(1000, int(rows * limit / self.exact_limit))
            probe = (
                f"SELECT id FROM (SELECT id, {condition} AS hit FROM {self.table} WHERE {start}"
                f" ORDER BY id LIMIT {probe_rows}) AS w WHERE hit LIMIT {limit}"
            )
            ids = self._column(probe)
            if len(ids) == limit:
                return ids
        elif not known_big:
            slack = ALTERNATIVES_SLACK if self._has_alternatives() else 1
            big = self._estimated_rows(where) > self.exact_limit * slack
        if not big:
            cap = self.exact_limit + 1
            sql = (
                f"WITH m AS MATERIALIZED (SELECT id FROM {self.table} WHERE {where} LIMIT {cap})"
                f" SELECT id, count(*) OVER () AS n FROM m ORDER BY id LIMIT {limit}"
            )
            rows = self._rows(sql)
            if not rows or int(rows[0][1]) < cap:
                return [str(row[0]) for row in rows]
        # Only the primary key's order is left: a seq scan and a sort looks cheaper to a
        # planner that multiplies the selectivities of a phrase and its word pairs, and
        # starting parallel workers costs more than the walk (bench/notes.md, 'Design
        # decisions: tier walks').
        self.conn.execute(f"SET {'; SET '.join(WALK_SETTINGS)}")
        try:  # searches run in autocommit: no SET LOCAL, so reset whatever happens
            sql = f"SELECT id FROM {self.table} WHERE {where} ORDER BY id LIMIT {limit}"
            return self._column(sql)
        finally:
            names = (setting.split(" = ")[0] for setting in WALK_SETTINGS)
            self.conn.execute(f"RESET {'; RESET '.join(names)}")

    def _has_alternatives(self) -> bool:
        """Whether a query word also matches other words: typo candidates or synonyms."""
        return self.typo_ranked or any(t.synonyms for t in self.parsed.terms)

    def _sorted_page(self, sort: tuple[SortKey, ...]) -> list[dict[str, Any]]:
        keyset: list[tuple[str, bool, str]] = []  # (expression, descending, parameter type)
        for key in sort:
            if key.field == "_score":  # after other keys: rank every match, or 0 without q
                keyset.append((self._rank() if self.has_q else "0::real", key.descending, "real"))
            elif key.field == "_id":
                keyset.append(("id", key.descending, "text"))
            else:
                expr, sql_type = _sort_value(self.collection.fields[key.field])
                keyset.append((f"({expr} IS NULL)", False, "boolean"))
                keyset.append((expr, key.descending, sql_type))
        where = self.match
        if self.query.after is not None:
            where += " AND " + _keyset_condition(keyset, self.query.after, self.params)
        order = ", ".join(f"{e} {'DESC' if d else 'ASC'}" for e, d, _ in keyset)
        columns = ", ".join(f"{e} AS s{i}" for i, (e, _, _) in enumerate(keyset))
        sql = (
            f"SELECT id, NULL::real AS score, {columns} FROM {self.table} WHERE {where}"
            f" ORDER BY {order} LIMIT {self.query.limit + 1}"
        )
        outer = ", ".join(f"s{i} {'DESC' if d else 'ASC'}" for i, (_, d, _) in enumerate(keyset))
        return self._page(sql, outer, page_score=self.has_q)

    def _page(self, page_sql: str, order: str, *, page_score: bool) -> list[dict[str, Any]]:
        """The page's rows with their documents, highlights and (when asked) scores.

        Documents come from `documents`, as of now: an updated hit shows its new version;
        one deleted since it was indexed comes back without a body (LEFT JOIN, so the page
        still knows there is more) and is left out of the hits. The row after the page
        (there when more follow) gets no highlights: nobody reads them, and ts_headline
        parses a hit's whole text."""
        shown = f"r.page_row <= {self.query.limit}"
        extra, inner, joins = [], [], []
        if page_score:
            inner.append(f"{self._rank('x.tsv')} AS page_score")
            joins.append(f"JOIN {self.table} x ON x.id = p.id")
        if self.has_q and self.query.highlight:
            config = ts_config(self.collection)
            extra += [
                f"CASE WHEN {shown} THEN ts_headline('{config}',"
                f" {_escaped('r.body', f.name, HIGHLIGHT_MAX_CHARS)},"
                f" {query_sql(self.collection)}, CASE WHEN length(r.body->>{quote_literal(f.name)})"
                f" <= {SHORT_TEXT_CHARS} THEN '{HEADLINE_WHOLE}' ELSE '{HEADLINE_FRAGMENTS}' END)"
                f" END AS h_{i}"
                for i, f in enumerate(self.collection.text_fields)
            ]
        cid = self.params.add(self.collection.id, "bigint")
        # The collection's state comes along, so the response needs no statement for it.
        name = self.params.add(self.collection.name)
        extra += [
            f"({pending_tasks_sql(name)}) AS {STATE_PENDING}",
            f"{has_pages_sql(cid)} AS {STATE_PAGES}",
        ]
        sql = (
            f"SELECT r.*{''.join(', ' + e for e in extra)} FROM"
            f" (SELECT p.*, d.body{''.join(', ' + e for e in inner)},"
            # (_ranked_first_page's count comes on a row of its own, without an id)
            f" row_number() OVER (PARTITION BY p.id IS NULL ORDER BY {order}) AS page_row"
            f" FROM ({page_sql}) AS p"
            # A lookup by key per page row, always: as a plain join, a collection missing
            # from the table's statistics was read whole
            # (tests/backends/postgres/test_page_documents.py).
            # `|| '{}'` hands the body on detoasted: each of the statement's reads of it
            # would otherwise fetch and decompress it again (bench/notes.md, 'Design
            # decisions: a page's documents read once').
            " LEFT JOIN LATERAL (SELECT body || '{}'::jsonb AS body FROM documents"
            f" WHERE collection_id = {cid} AND id = p.id LIMIT 1) AS d ON true"
            f" {' '.join(joins)}) AS r ORDER BY r.page_row"
        )
        with self.conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(sql, self.params.values).fetchall()
        if rows:
            self.state = CollectionState(int(rows[0][STATE_PENDING]), bool(rows[0][STATE_PAGES]))
        return rows

    # -- totals and facets -----------------------------------------------------------------

    def _count_capped(self) -> int:
        """Matches, counted up to exact_limit + 1 (once per search)."""
        if self.capped_count is None and not self._many_pair_rows():
            self.capped_count = self._count_where(self.all_match)
        assert self.capped_count is not None
        return self.capped_count

    def _many_pair_rows(self) -> bool:
        """For a phrase of two words: whether more than exact_limit rows hold its word pair,
        counted up to exact_limit + 1 (then that is the capped count). Such a row matches
        the phrase but for a collision of two pairs' hashes, and counting the rows without
        checking the phrase on each costs half as much (bench/notes.md, 'Design decisions:
        a phrase of two words counted by its pair')."""
        if not self.pair_match:
            return False
        rows = self._count_where(self.pair_match)
        if rows <= self.exact_limit:
            return False
        self.capped_count = rows
        return True

    def _estimated_rows(self, where: str) -> float:
        plan = self._scalar(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {self.table} WHERE {where}")
        return float(plan[0]["Plan"]["Plan Rows"])

    def _count_where(self, where: str, limit: int | None = None) -> int:
        """Rows meeting `where`, counted up to `limit` (exact_limit by default) + 1: cheap
        whatever the total."""
        limit = self.exact_limit if limit is None else limit
        return int(
            self._scalar(
                f"SELECT count(*) FROM (SELECT 1 FROM {self.table} WHERE {where}"
                f" LIMIT {limit + 1}) AS m"
            )
        )

    def _capped_total(self) -> tuple[int, bool]:
        n, limit = self._count_capped(), self.exact_limit
        return (n, True) if n <= limit else (limit, False)

    def _facets(
        self, with_tier_page: bool
    ) -> tuple[int, dict[str, list[tuple[Any, int]]], list[tuple[str, bool]] | None]:
        """Facet counts over the whole result set, with its exact size, in one statement.

        with_tier_page: also return what a first tiered page would hold, the (id, top tier?)
        pairs of its rows, top tier first, each tier in id order. The statement reads
        every match anyway; picking the page there saves the tier statements (bench/notes.md,
        'Design decisions: facet counts'). Used only if the total exceeds exact_limit."""
        names = list(self.query.facets)  # distinct (parse_facets)
        columns = ", ".join(column(name) for name in names)
        # One grouping over every facet column, then each facet (and the total) from its
        # few rows: one hash pass over the matches instead of one per facet plus a count.
        parts = ["(SELECT '' AS facet, NULL::text AS value, coalesce(sum(n), 0)::bigint FROM g)"]
        for i, name in enumerate(names):
            col = column(name)
            if self.collection.fields[name].type == "keyword":
                # Each group's count spread over its array's values: one unnest per
                # distinct array, not one per match. A value twice in one array counts twice.
                source, value = f"g, unnest(g.{col}) AS e{i}(v)", f"e{i}.v"
            else:
                source, value = "g", f"g.{col}"
            parts.append(
                f"(SELECT {quote_literal(name)}, {value}::text, sum(g.n)::bigint AS n"
                f" FROM {source} WHERE {value} IS NOT NULL GROUP BY {value}"
                f" ORDER BY n DESC, {value} LIMIT {int(self.query.facet_size)})"
            )
        if self.has_q and self.tsquery is None:
            # The parsed query, which a tiered search needs next, without a round trip.
            parts.append(f"(SELECT '{TSQUERY_ROW}', {query_sql(self.collection)}::text, 0)")
        matches = f"{self.table} WHERE {self.match}"
        if with_tier_page:
            top = "false"
            if Layout(self.collection).top_fields:
                # A sub-select: the query is parsed once, not once per row.
                top = f"coalesce(tsv_top @@ (SELECT {query_sql(self.collection)}), false)"
            # A facet name is an identifier, so "#page" cannot be one.
            parts.append(
                f"(SELECT '{PAGE_ROW}', id, top::int::bigint FROM m"
                f" ORDER BY top DESC, id LIMIT {self.query.limit + 1})"
            )
            prefix = f"WITH m AS MATERIALIZED (SELECT {columns}, id, {top} AS top FROM {matches}), "
            matches = "m"
        else:
            prefix = "WITH "
        sql = (
            f"{prefix}g AS MATERIALIZED (SELECT {columns}, count(*) AS n FROM {matches}"
            f" GROUP BY {columns}) " + " UNION ALL ".join(parts)
        )
        total = 0
        facets: dict[str, list[tuple[Any, int]]] = {name: [] for name in names}
        page: list[tuple[str, bool]] = []
        for facet, value, n in self._rows(sql):
            if facet == "":
                total = int(n)
            elif facet == PAGE_ROW:
                page.append((value, bool(n)))
            elif facet == TSQUERY_ROW:
                self.tsquery = str(value)
            else:
                spec = self.collection.fields[facet]
                facets[facet].append((_facet_value(spec, value), int(n)))
        return total, facets, (page if with_tier_page else None)

    # -- statements ------------------------------------------------------------------------

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, self.params.values).fetchall()

    def _column(self, sql: str) -> list[Any]:
        return [row[0] for row in self._rows(sql)]

    def _scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.conn.execute(sql, self.params.values if params is None else params).fetchone()
        assert row is not None
        return row[0]

    # -- pieces ----------------------------------------------------------------------------

    def _tsquery(self) -> str:
        """The query as PostgreSQL parsed it (its tsquery's text), asked for once."""
        if self.tsquery is None:
            self.tsquery = str(self._scalar(f"SELECT {query_sql(self.collection)}::text"))
        return self.tsquery

    def _pair_filter(self) -> tuple[str | None, bool, bool]:
        """The condition on a phrase's word pairs, for a collection with index_phrases
        (the rows holding them are few where the rows holding its words may be 100,000:
        migration 0005), whether the pairs hold every word of the query, and whether the
        query is one phrase of two words."""
        tsquery = self._tsquery()
        pairs, complete = required_pairs(tsquery)
        groups = self.parsed.groups
        if not pairs and len(groups) == 1:
            # A typo's or a synonym's OR elsewhere in the query does not make its plain
            # phrases any less required: their pairs still narrow the search.
            phrases = tuple(t for t in groups[0] if t.quoted and not t.negated and not t.synonyms)
            if phrases:
                text = tsquery_text(ParsedQuery((phrases,)))
                config = ts_config(self.collection)
                pairs, _ = required_pairs(
                    self._scalar(f"SELECT to_tsquery('{config}', %(t)s)::text", {"t": text})
                )
                complete = False
        if not pairs:
            return None, False, False
        hashes = ", ".join(f"hashtext({self.params.add(pair, 'text')})" for pair in pairs)
        return f"pairs @> ARRAY[{hashes}]", complete, complete and is_one_pair(tsquery)

    def _filter(self, flt: FieldFilter) -> str:
        spec = self.collection.fields[flt.field]
        col, sql_type = column(spec.name), PARAM_TYPES[spec.type]
        clauses: list[str] = []
        if flt.values:
            if spec.type == "keyword":
                clauses.append(
                    f"{col} && {self.params.add([str(v) for v in flt.values], 'text[]')}"
                )
            else:
                clauses.append(f"{col} = ANY({self.params.add(list(flt.values), sql_type + '[]')})")
        for op, bound in ((">=", flt.gte), (">", flt.gt), ("<=", flt.lte), ("<", flt.lt)):
            if bound is not None:
                target = f"{col}[1]" if spec.type == "keyword" else col
                clauses.append(f"{target} {op} {self.params.add(bound, sql_type)}")
        return " AND ".join(clauses) if clauses else "TRUE"

    def _hits(self, rows: list[dict[str, Any]]) -> list[Hit]:
        hits: list[Hit] = []
        n_sort = (
            sum(1 for key in rows[0] if key.startswith("s") and key[1:].isdigit()) if rows else 0
        )
        for row in rows[: self.query.limit]:
            if row["body"] is None:
                continue  # deleted since it was indexed; the worker is removing it
            highlights: dict[str, list[str]] = {}
            for i, f in enumerate(self.collection.text_fields):
                snippet = row.get(f"h_{i}")
                if snippet and "<mark>" in snippet:
                    highlights[f.name] = [snippet]
            score = row["score"] if row["score"] is not None else row.get("page_score")
            hits.append(
                Hit(
                    id=row["id"],
                    score=None if score is None else float(score),
                    document=row["body"],
                    highlights=highlights,
                    sort_values=[_jsonable(row[f"s{i}"]) for i in range(n_sort)],
                )
            )
        return hits


def _likely_stem(word: str, common: Container[str]) -> str:
    """The longest of the common lexemes that `word` begins, when it leaves no more than a
    suffix's few letters of it (`simple` → `simpl`): the lexeme it most likely stems to; ""
    for none. A guess, only ever used to pick between plans that find the same rows."""
    for end in range(len(word), max(3, len(word) - 5) - 1, -1):
        if word[:end] in common:
            return word[:end]
    return ""


def _sort_value(spec: FieldSpec) -> tuple[str, str]:
    col = column(spec.name)
    # A keyword list sorts by its first value.
    return (f"{col}[1]" if spec.type == "keyword" else col), PARAM_TYPES[spec.type]


def _facet_value(spec: FieldSpec, value: str) -> Any:
    if spec.type == "integer":
        return int(value)
    if spec.type == "float":
        return float(value)
    if spec.type == "boolean":
        return value == "true"
    if spec.type == "date":
        return normalize_date(value.replace(" ", "T"))
    return value


def _escaped(doc: str, field: str, max_chars: int) -> str:
    """The field's first max_chars characters with HTML metacharacters escaped, so snippets
    are safe to render."""
    raw = f"left({doc}->>{quote_literal(field)}, {int(max_chars)})"
    return f"replace(replace(replace({raw}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _keyset_condition(
    keyset: list[tuple[str, bool, str]], after: Sequence[Any], params: _Params
) -> str:
    """Rows strictly after `after` in the keyset order (NULL-safe equality)."""
    if len(after) != len(keyset) or not all(
        _fits(value, sql_type) for value, (_, _, sql_type) in zip(after, keyset, strict=True)
    ):
        raise InvalidCursor("cursor does not match this query's sort")
    ors: list[str] = []
    for i, (expr, descending, sql_type) in enumerate(keyset):
        ands = [
            f"{keyset[j][0]} IS NOT DISTINCT FROM {params.add(after[j], keyset[j][2])}"
            for j in range(i)
        ]
        ands.append(f"{expr} {'<' if descending else '>'} {params.add(after[i], sql_type)}")
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")"


def _fits(value: Any, sql_type: str) -> bool:
    """Whether a cursor's value has the JSON type this backend put there for a column of
    sql_type: a forged one would otherwise fail in PostgreSQL's casts."""
    if value is None:
        return True
    if sql_type == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if sql_type == "bigint":
        return isinstance(value, int)
    if sql_type in ("real", "double precision"):
        return isinstance(value, int | float)
    if sql_type == "timestamptz":
        if not isinstance(value, str):
            return False
        try:
            normalize_date(value)
        except ValueError:
            return False
        return True
    return isinstance(value, str)


def _jsonable(value: Any) -> Any:
    # A cursor is JSON: timestamps travel as ISO text, cast back by CAST(:p AS timestamptz).
    return value.isoformat() if isinstance(value, datetime) else value
