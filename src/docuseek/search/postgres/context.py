"""What every PostgreSQL search statement starts from: the query parsed for the collection,
its match as SQL conditions and parameters, its rank, and the statements that run it."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rapidfuzz.distance import OSA

from docuseek.queries import has_pages_sql, pending_tasks_sql
from docuseek.schema import Collection
from docuseek.search.analysis import split_joined
from docuseek.search.base import (
    CollectionState,
    FieldFilter,
    Hit,
    SearchQuery,
)
from docuseek.search.postgres.layout import (
    PARAM_TYPES,
    Layout,
    column,
    is_one_pair,
    query_sql,
    quote_literal,
    required_pairs,
    ts_config,
)
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
STATE_PENDING, STATE_PAGES = "state_pending_tasks", "state_has_pages"  # _page's columns
# A row checked for a prefix costs about this many postings of the prefix read from the index
# (_words_before_prefix).
PREFIX_CHECK_COST = 5


class Params:
    """A search's parameters, as psycopg placeholders (a literal % would have to be %%)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, sql_type: str | None = None) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"CAST(%({name})s AS {sql_type})" if sql_type else f"%({name})s"


class SearchContext:
    """One search's query, conditions and parameters on one connection, and the statements
    every mode of it runs."""

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
        self.params = Params()
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

    def _typed_prefix(self) -> str:
        """The last word, being typed, as to_tsquery's text (`'docu':*`)."""
        return tsquery_text(ParsedQuery((tuple(t for t in self.parsed.groups[0] if t.prefix),)))

    def _checked_on_rows(self) -> str:
        """The match, checked on rows another condition picks: the query's words, and a
        phrase's word pair, wrapped in `IS TRUE` so the planner does not read their
        posting lists to intersect them with those rows."""
        words = self.words_match.format(column="tsv")
        match = self.match.replace(words, f"({words}) IS TRUE", 1)
        if self.pair_filter:
            match = match.replace(self.pair_filter, f"({self.pair_filter}) IS TRUE", 1)
        return match

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

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, self.params.values).fetchall()

    def _column(self, sql: str) -> list[Any]:
        return [row[0] for row in self._rows(sql)]

    def _scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.conn.execute(sql, self.params.values if params is None else params).fetchone()
        assert row is not None
        return row[0]

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
        bounds = [
            (op, self.params.add(bound, sql_type))
            for op, bound in ((">=", flt.gte), (">", flt.gt), ("<=", flt.lte), ("<", flt.lt))
            if bound is not None
        ]
        if bounds and spec.type == "keyword":
            # As OpenSearch's range on a list: one of its values within every bound,
            # comparing bytes.
            within = " AND ".join(f'v COLLATE "C" {op} {param}' for op, param in bounds)
            clauses.append(f"EXISTS (SELECT FROM unnest({col}) AS v WHERE {within})")
        else:
            clauses += [f"{col} {op} {param}" for op, param in bounds]
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


def _escaped(doc: str, field: str, max_chars: int) -> str:
    """The field's first max_chars characters with HTML metacharacters escaped, so snippets
    are safe to render."""
    raw = f"left({doc}->>{quote_literal(field)}, {int(max_chars)})"
    return f"replace(replace(replace({raw}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"


def _jsonable(value: Any) -> Any:
    # A cursor is JSON: timestamps travel as ISO text, cast back by CAST(:p AS timestamptz).
    return value.isoformat() if isinstance(value, datetime) else value
