"""Proofs that a query has more than exact_limit matches, cheaper than counting them: rows
found another way that are surely matches (a pair of words side by side, the prefix's
common completions, the top fields)."""

from __future__ import annotations

from collections.abc import Container

from docuseek.search.postgres.context import SearchContext
from docuseek.search.postgres.layout import (
    PLAIN_LEXEME,
    Layout,
    quote_literal,
    ts_config,
)
from docuseek.search.postgres.statistics import common_lexemes, table_statistics

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


class Proofs(SearchContext):
    """The proofs a broad query's first page tries before it counts its matches."""

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


def _likely_stem(word: str, common: Container[str]) -> str:
    """The longest of the common lexemes that `word` begins, when it leaves no more than a
    suffix's few letters of it (`simple` → `simpl`): the lexeme it most likely stems to; ""
    for none. A guess, only ever used to pick between plans that find the same rows."""
    for end in range(len(word), max(3, len(word) - 5) - 1, -1):
        if word[:end] in common:
            return word[:end]
    return ""
