"""A broad query's tiered page: the matches whose words ts_rank rewards most (found through
impact tokens) ranked exactly, then the other top-field matches, then the rest, each of
these in id order."""

from __future__ import annotations

from typing import Any

from docuseek.search.base import (
    InvalidCursor,
)
from docuseek.search.postgres.context import SearchContext
from docuseek.search.postgres.layout import (
    IMPACT_LEVELS,
    Layout,
    impact_tokens,
    query_sql,
    quote_literal,
    required_lexemes,
)

TIERED = "t"  # the cursor tag of a tiered page
RANKED_TIER = 2  # a tiered cursor's tier: ranked candidates, then top fields (1), the rest (0)
# _tier_ids: how a big tier is walked along the primary key.
WALK_SETTINGS = (
    "enable_bitmapscan = off",
    "enable_seqscan = off",
    "max_parallel_workers_per_gather = 0",
)
# An impact level's rows read before its filters are checked on them, at most: below this
# that is cheaper than the bitmap of every row a filter admits.
LEVEL_PROBE_ROWS = 2_000
# A tier of words with alternatives is walked in id order only when the planner expects this
# many times exact_limit rows (_tier_ids).
ALTERNATIVES_SLACK = 5
# A query with a phrase ranks at most this many rows first: its words go together, so the
# rows repeating them most already hold ts_rank's top (_ranked_candidates).
PHRASE_RANKED_ROWS = 200
# A filtered one-word walk counts the first weight's impact levels in batches ending at
# these (_level_sizes_at_once): the strictest five, then the rest.
LEVEL_BATCH_ENDS = (4, len(IMPACT_LEVELS) - 1)


class Tiers(SearchContext):
    """The tiered pages of a query with more matches than exact_limit."""

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
