"""Typo candidates: the indexed lexemes a query word with typos also matches, looked up
in the vocabulary of the collection's index table (every lexeme its documents were
indexed with), nearest first, and spelled for to_tsquery."""

from __future__ import annotations

from typing import Any

import psycopg
from rapidfuzz.distance import OSA

from docuseek.schema import Collection
from docuseek.search.postgres.layout import PLAIN_LEXEME, ts_config, vocabulary_table
from docuseek.search.postgres.statistics import table_statistics
from docuseek.search.query import (
    MAX_TYPO_CANDIDATES,
    ParsedQuery,
    first_letter_typo_allowed,
    first_letter_variants,
    one_edit_variants,
)

# Equally near candidates that MAX_TYPO_CANDIDATES would cut between are told apart by
# their documents, counted up to this many each.
TIED_CANDIDATE_DOCUMENTS = 50
# A candidate's order among a word's candidates: its distance, whether it was found near
# the stem only, minus its share of rows, how far its length is from the word's; a
# candidate is ((order, spelling), lexeme).
_CandidateOrder = tuple[int, bool, float, int]
_Candidate = tuple[tuple[_CandidateOrder, str], str]


def typo_candidates(
    conn: psycopg.Connection[Any], table: str, collection: Collection, parsed: ParsedQuery
) -> dict[int, list[tuple[str, str]]]:
    """Term index → the indexed lexemes within the term's typos, closest first (an
    OSA distance: a transposition is one typo), each with its spelling for
    to_tsquery. Candidates share the query word's first letter (the vocabulary's index
    is on the first letter and length); a Levenshtein distance of at most twice the
    typos (a transposition is two edits to it) narrows them in SQL, the OSA distance
    decides. Stems can be further apart than their words, so the stems of the words
    one edit away (but for the first letter) are looked up as they are too, as one
    typo, and come first among candidates as near. A word allowed two typos may
    instead have one in its first letter, which counts as both (Meilisearch's rule):
    the stems of those variants, as two typos (as one in the retry of a query that
    found nothing).

    to_tsquery stems what it is given, and many stems do not stem to themselves
    (English `travers`, the stem of `traverse`, stems to `traver`): a candidate is
    spelled as a word that stems to it, the variant it came from or the lexeme with
    or without a final `e`, and left out when none does."""
    terms = [(i, t) for i, t in enumerate(parsed.terms) if t.typos]
    config = ts_config(collection)
    vocabulary = vocabulary_table(table)
    near = (
        "SELECT w.i, w.stem, v.lexeme, NULL::int, NULL::text FROM (SELECT u.i, u.k,"
        f" (SELECT min(lexeme) FROM unnest(to_tsvector('{config}', u.word))) AS stem"
        " FROM unnest(CAST(%(tw)s AS text[]), CAST(%(tk)s AS int[]), CAST(%(ti)s AS int[]))"
        " AS u(word, k, i))"
        f" w CROSS JOIN LATERAL (SELECT lexeme FROM {vocabulary} v"
        " WHERE left(v.lexeme, 1) = left(w.stem, 1)"
        " AND length(v.lexeme) BETWEEN length(w.stem) - w.k AND length(w.stem) + w.k"
        " AND v.lexeme <> w.stem AND levenshtein_less_equal(v.lexeme, w.stem, 2 * w.k)"
        " <= 2 * w.k ORDER BY levenshtein_less_equal(v.lexeme, w.stem, 2 * w.k), lexeme"
        " LIMIT 200) v"
    )
    # Variants: (term index, typos they count as, the variant words).
    variants = [(i, 1, one_edit_variants(t.text, first_letter=False)) for i, t in terms]
    variants += [
        (i, 1 if t.first_letter else 2, first_letter_variants(t.text))
        for i, t in terms
        if first_letter_typo_allowed(t)
    ]
    # A variant is one word of the text stemmed at once: its lexeme's position says
    # which. The words are split once and joined by position: a subscript of the split
    # text per lexeme made a long word's thousands of variants cost quadratic time.
    stemmed_variants = (
        f"SELECT f.i, (SELECT min(lexeme) FROM unnest(to_tsvector('{config}', f.word))),"
        " x.lexeme, f.d, x.word"
        " FROM unnest(CAST(%(vw)s AS text[]), CAST(%(vi)s AS int[]),"
        " CAST(%(vd)s AS int[]), CAST(%(vo)s AS text[])) AS f(words, i, d, word)"
        " CROSS JOIN LATERAL (SELECT t.lexeme, w.word"
        f" FROM unnest(to_tsvector('{config}', f.words)) AS t"
        " JOIN unnest(string_to_array(f.words, ' ')) WITH ORDINALITY AS w(word, n)"
        " ON w.n = t.positions[1]) AS x"
        f" JOIN {vocabulary} v ON v.lexeme = x.lexeme"
    )
    spelling = (
        "SELECT o.w FROM unnest(ARRAY[c.word, c.lexeme, c.lexeme || 'e'])"
        " WITH ORDINALITY AS o(w, n) WHERE o.w IS NOT NULL"
        f" AND plainto_tsquery('{config}', o.w)::text = quote_literal(c.lexeme)"
        " ORDER BY o.n LIMIT 1"
    )
    sql = (
        "SELECT c.i, c.stem, c.lexeme, c.d, s.w FROM"
        f" ({near} UNION ALL {stemmed_variants}) AS c(i, stem, lexeme, d, word)"
        f" CROSS JOIN LATERAL ({spelling}) AS s"
    )
    params = {
        "tw": [t.text for _, t in terms],
        "tk": [t.typos for _, t in terms],
        "ti": [i for i, _ in terms],
        "vw": [" ".join(words) for _, _, words in variants],
        "vi": [i for i, _, _ in variants],
        "vd": [d for _, d, _ in variants],
        "vo": [parsed.terms[i].text for i, _, _ in variants],
    }
    typos = {i: t.typos for i, t in terms}
    common = table_statistics(conn, table).shares("tsv")
    found: dict[int, dict[str, tuple[_CandidateOrder, str]]] = {}
    with conn.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()
    for i, stem, lexeme, variant_typos, spelled in rows:
        plain = PLAIN_LEXEME.fullmatch(lexeme) and PLAIN_LEXEME.fullmatch(spelled)
        if not plain or lexeme == stem:
            continue
        distance = OSA.distance(stem, lexeme) if variant_typos is None else variant_typos
        if distance <= typos[i]:
            # Closest first, then a variant's before a stem's neighbour, then the more
            # common (ANALYZE's statistics know the common ones), then nearest in length
            # to the word typed (a stem that kept most of it); a lexeme found twice
            # keeps its best.
            typed = len(parsed.terms[i].text)
            share = -common.get(lexeme, 0.0)
            key = (distance, variant_typos is None, share, abs(len(lexeme) - typed))
            options = found.setdefault(i, {})
            options[lexeme] = min(options.get(lexeme, (key, spelled)), (key, spelled))
    ranked = {i: sorted((v, lx) for lx, v in options.items()) for i, options in found.items()}
    ranked = _ties_by_documents(conn, table, ranked)
    return {
        i: [(lexeme, spelled) for (_, spelled), lexeme in best[:MAX_TYPO_CANDIDATES]]
        for i, best in ranked.items()
    }


def _ties_by_documents(
    conn: psycopg.Connection[Any], table: str, ranked: dict[int, list[_Candidate]]
) -> dict[int, list[_Candidate]]:
    """Candidates equally near and equally common to ANALYZE's statistics (which know
    only the most common lexemes) where MAX_TYPO_CANDIDATES cuts between them, ordered
    by the documents holding them (counted up to TIED_CANDIDATE_DOCUMENTS): a stem
    that English shortens to three letters (`egbeds` → `egb`) has dozens of neighbours
    as near as the word meant, most of them stray tokens found in one document
    (bench/notes.md, 'Design decisions: typo candidates tied at the cut')."""
    tied: dict[int, list[str]] = {}
    for i, best in ranked.items():
        if len(best) > MAX_TYPO_CANDIDATES:
            cut = best[MAX_TYPO_CANDIDATES][0][0][:3]
            if best[MAX_TYPO_CANDIDATES - 1][0][0][:3] == cut:
                tied[i] = [lexeme for (key, _), lexeme in best if key[:3] == cut]
    if not tied:
        return ranked
    lexemes = sorted({lexeme for group in tied.values() for lexeme in group})
    sql = (
        "SELECT l, (SELECT count(*) FROM (SELECT 1 FROM"
        f" {table} WHERE live AND tsv @@ CAST(quote_literal(l) AS tsquery)"
        f" LIMIT {TIED_CANDIDATE_DOCUMENTS}) AS m) FROM unnest(CAST(%(l)s AS text[])) AS l"
    )
    with conn.cursor() as cur:
        documents = dict(cur.execute(sql, {"l": lexemes}).fetchall())

    def order(item: _Candidate) -> tuple[Any, ...]:
        (key, spelled), lexeme = item
        return (*key[:3], -documents.get(lexeme, 0), key[3], spelled, lexeme)

    return {i: sorted(best, key=order) if i in tied else best for i, best in ranked.items()}
