"""The search box's syntax, parsed once into a small tree that every backend compiles.

Syntax (as websearch_to_tsquery's): words are AND-ed, `"quoted words"` match as a
phrase, `-word` excludes, the word `or` separates alternatives (`a b or c` is
`(a AND b) OR c`). The collection's search settings apply here, so both backends see the
same query: a word (or quoted phrase) with synonyms becomes an OR of its alternatives
(a multi-word alternative is a phrase), the collection's stop words are dropped, the last
word is marked as a prefix (search-as-you-type) and long words get their allowed typos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MIN_PREFIX_CHARS = 2  # a shorter last word matches only itself: `a` must not scan everything
MAX_TYPO_CANDIDATES = 10  # indexed words a query word with typos also matches, at most
# Longer words (identifiers, hashes, run-together text) match only as typed: their typo
# variants grow with their length, and PostgreSQL's edit distance stops at 255 characters.
MAX_TYPO_WORD_CHARS = 64
MAX_SYNONYM_ENTRIES = 10_000
MAX_STOP_WORDS = 10_000
MAX_ENTRY_CHARS = 200
_WORD_RE = re.compile(r"\w+")
# A word followed by punctuation (`stratgy?`, `nginx,`, `hel*`): the word, and the marks
# PostgreSQL's parser and OpenSearch's tokenizer would drop anyway.
_MARKED_WORD = re.compile(r"(\w+)([^\w\s]+)")
_SPACES = re.compile(r"\s+")
# tsquery's operator characters: websearch_to_tsquery ends a word at them and skips them
# where a word may start, so a `-` after them still negates: `(-dog)`.
_SKIPPED = frozenset("!&|()<:")
_BLANK = frozenset(" \t\n\r\f\v")  # PostgreSQL's word separators: ASCII whitespace only
_CONTROL = re.compile("[\x01-\x08\x0e-\x1f\x7f]")


def blank_control_chars(q: str) -> str:
    """The query with its ASCII control characters (other than whitespace) as spaces:
    PostgreSQL's parser reads a word followed by one differently in a query and in a
    document, and no one means one."""
    return _CONTROL.sub(" ", q)


def normalize(text: str) -> str:
    """How synonym and stop word entries are compared with query text."""
    return _SPACES.sub(" ", text.strip().lower())


class TypoTolerance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Whether query words may match with typos.")
    min_word_size_one_typo: int = Field(
        5, ge=1, le=100, description="Words of at least this many characters may have 1 typo."
    )
    min_word_size_two_typos: int = Field(
        9, ge=1, le=100, description="Words of at least this many characters may have 2 typos."
    )
    disable_on_words: list[str] = Field(
        default_factory=list,
        max_length=MAX_STOP_WORDS,
        description="Query words that only ever match exactly.",
    )
    disable_on_fields: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Text fields where words only match exactly. PostgreSQL: typos are then off for"
            " every field of the same weight."
        ),
    )

    @model_validator(mode="after")
    def _check_sizes(self) -> TypoTolerance:
        if self.min_word_size_two_typos < self.min_word_size_one_typo:
            raise ValueError("min_word_size_two_typos must be >= min_word_size_one_typo")
        return self


class SearchSettings(BaseModel):
    """A collection's query-time settings: they change how queries are read, not what is
    indexed, so a change takes effect at once, without a reindex."""

    model_config = ConfigDict(extra="forbid")

    synonyms: list[list[str]] = Field(
        default_factory=list,
        max_length=MAX_SYNONYM_ENTRIES,
        description=(
            'Multi-way synonym groups, e.g. [["laptop", "notebook"]]: a query word (or'
            " quoted phrase) equal to one member also matches every other member; a"
            " member of several words matches as a phrase."
        ),
    )
    one_way_synonyms: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            'One-way synonyms, e.g. {"nyc": ["new york"]}: the key also matches its'
            " alternatives, not the other way round."
        ),
    )
    stop_words: list[str] = Field(
        default_factory=list,
        max_length=MAX_STOP_WORDS,
        description=(
            "Words dropped from queries (unquoted words only; documents are indexed"
            " unchanged). The language's own stop words are always ignored."
        ),
    )
    typo_tolerance: TypoTolerance = Field(default_factory=TypoTolerance)

    @field_validator("synonyms")
    @classmethod
    def _check_groups(cls, groups: list[list[str]]) -> list[list[str]]:
        for i, group in enumerate(groups):
            if len(group) < 2:
                raise ValueError(f"synonym group {i} needs at least two entries")
            for entry in group:
                _check_entry(entry)
        return groups

    @field_validator("one_way_synonyms")
    @classmethod
    def _check_one_way(cls, mapping: dict[str, list[str]]) -> dict[str, list[str]]:
        if len(mapping) > MAX_SYNONYM_ENTRIES:
            raise ValueError(f"at most {MAX_SYNONYM_ENTRIES} one-way synonyms")
        for key, values in mapping.items():
            _check_entry(key)
            if not values:
                raise ValueError(f"one-way synonym {key!r} has no alternatives")
            for value in values:
                _check_entry(value)
        return mapping

    @field_validator("stop_words")
    @classmethod
    def _check_stop_words(cls, words: list[str]) -> list[str]:
        for word in words:
            _check_entry(word)
            if " " in normalize(word):
                raise ValueError(f"stop word {word!r} must be a single word")
        return words

    def alternatives(self) -> dict[str, list[str]]:
        """Normalized query text → the texts it also matches (itself excluded)."""
        out: dict[str, list[str]] = {}
        for group in self.synonyms:
            members = list(dict.fromkeys(normalize(m) for m in group))
            for member in members:
                out.setdefault(member, []).extend(m for m in members if m != member)
        for key, values in self.one_way_synonyms.items():
            k = normalize(key)
            out.setdefault(k, []).extend(normalize(v) for v in values if normalize(v) != k)
        return {k: list(dict.fromkeys(v)) for k, v in out.items() if v}


def _check_entry(entry: str) -> None:
    if not _WORD_RE.search(entry):
        raise ValueError(f"entry {entry!r} must contain a word")
    if len(entry) > MAX_ENTRY_CHARS:
        raise ValueError(f"entry {entry[:20]!r}… is longer than {MAX_ENTRY_CHARS} characters")


DEFAULT_SETTINGS = SearchSettings()


@dataclass(frozen=True)
class Term:
    """One clause of the query: a word or phrase, or an OR of its synonyms."""

    text: str  # as typed: one word, or several (then a phrase)
    negated: bool = False
    quoted: bool = False
    synonyms: tuple[str, ...] = ()  # alternatives from the settings, normalized
    prefix: bool = False  # the last word being typed: also matches words it begins
    typos: int = 0  # edits a match may be away from `text` (0 to 2)
    first_letter: bool = False  # a typo in the first letter counts as one, not two

    @property
    def word(self) -> str | None:
        """The term's only word, when it is one plain word (`\\w+`)."""
        words: list[str] = _WORD_RE.findall(self.text)
        return words[0] if len(words) == 1 and words[0] == self.text else None

    @property
    def alternatives(self) -> tuple[str, ...]:
        return (self.text, *self.synonyms)


@dataclass(frozen=True)
class ParsedQuery:
    groups: tuple[tuple[Term, ...], ...] = field(default_factory=tuple)  # OR of AND-ed terms

    @property
    def terms(self) -> list[Term]:
        return [t for g in self.groups for t in g]

    @property
    def has_negation(self) -> bool:
        return any(t.negated for t in self.terms)

    @property
    def has_typos(self) -> bool:
        return any(t.typos for t in self.terms)


def _is_or(q: str, i: int) -> bool:
    """Whether `or` at i, after an operand, is the OR operator to websearch_to_tsquery: not
    the start of a longer word, and something other than blanks after it."""
    if q[i : i + 2].lower() != "or" or i + 2 >= len(q):
        return False
    following = q[i + 2]
    if following in "-_" or following.isalnum():
        return False
    return any(ch not in _BLANK for ch in q[i + 3 :])


def split_websearch(q: str) -> list[list[tuple[str, bool, bool]]]:
    """websearch_to_tsquery's grammar: OR-groups of (text, negated, quoted) clauses."""
    groups: list[list[tuple[str, bool, bool]]] = [[]]
    i, n = 0, len(q)
    negated = False  # each `-` before a word toggles it, as websearch_to_tsquery's `!`s
    after_operand = False  # where `or` may be the OR operator
    while i < n:
        ch = q[i]
        if ch in _BLANK or ch in _SKIPPED:
            i += 1
            continue
        if ch == "-":
            negated = not negated
            i += 1
            continue
        if not negated and after_operand and _is_or(q, i):
            groups.append([])
            after_operand = False
            i += 2
            continue
        after_operand = True
        quoted = q[i] == '"'
        if quoted:
            end = q.find('"', i + 1)
            end = n if end < 0 else end
            text, i = q[i + 1 : end], end + 1
        else:
            start = i
            while i < n and q[i] not in _BLANK and q[i] != '"' and q[i] not in _SKIPPED:
                i += 1
            text = q[start:i]
            if not negated and text.lower() == "or":
                continue  # an operand, a stop word: no operand before it or none after it
        if text.strip():  # PostgreSQL's parser decides what is a word (`..` is one)
            groups[-1].append((text, negated, quoted))
        negated = False
    return [g for g in groups if g]


def allowed_typos(word: str, settings: TypoTolerance) -> int:
    """Meilisearch's rule: by the word's length; never for numbers (any digit), words
    the settings exclude or words longer than MAX_TYPO_WORD_CHARS."""
    if not settings.enabled or any(ch.isdigit() for ch in word):
        return 0
    if len(word) > MAX_TYPO_WORD_CHARS:
        return 0
    if normalize(word) in {normalize(w) for w in settings.disable_on_words}:
        return 0
    if len(word) >= settings.min_word_size_two_typos:
        return 2
    return 1 if len(word) >= settings.min_word_size_one_typo else 0


_LATIN = "abcdefghijklmnopqrstuvwxyz"


def one_edit_variants(word: str, *, first_letter: bool) -> list[str]:
    """The words one edit away from `word` (lowercased): a letter deleted, replaced or
    inserted, or two neighbours swapped. `first_letter`: only the edits of the first
    letter (deleted, replaced, one put before it, swapped with the second); otherwise only
    the edits that keep it. Typo tolerance looks these up as words are indexed, stemmed:
    a stem can be further from a misspelt word's stem than the words are apart
    (`topoogy` and `topology` stem to `topoogi` and `topolog`)."""
    w = word.lower()
    if len(w) < 2:
        return []
    letters = sorted(set(_LATIN) | set(w))
    if first_letter:
        variants = {w[1:], w[1] + w[0] + w[2:]}
        variants |= {c + w[1:] for c in letters} | {c + w for c in letters}
    else:
        variants = {w[:i] + w[i + 1 :] for i in range(1, len(w))}
        variants |= {w[:i] + w[i + 1] + w[i] + w[i + 2 :] for i in range(1, len(w) - 1)}
        variants |= {w[:i] + c + w[i + 1 :] for i in range(1, len(w)) for c in letters}
        variants |= {w[:i] + c + w[i:] for i in range(1, len(w) + 1) for c in letters}
    variants.discard(w)
    return sorted(variants)


def first_letter_variants(word: str) -> list[str]:
    """The words one edit of the first letter away. Meilisearch's rule: a typo in the first
    letter counts as two, so only a word allowed two typos gets them, and nothing else may
    differ."""
    return one_edit_variants(word, first_letter=True)


def first_letter_typo_allowed(term: Term) -> bool:
    """Whether the term may match the words one edit of its first letter away: a word
    allowed two typos may spend both on it; in the retry of a query that found nothing
    (`Term.first_letter`), one is enough."""
    return term.typos >= 2 or term.first_letter


def retry_with_first_letter_typos(q: str, settings: SearchSettings, *, prefix: bool) -> bool:
    """Whether a query that found nothing may find something when a first-letter typo
    counts as one: it has a word allowed one typo only (two already allow it)."""
    return any(t.typos == 1 for t in parse(q, settings, prefix=prefix).terms)


def parse(
    q: str,
    settings: SearchSettings = DEFAULT_SETTINGS,
    *,
    prefix: bool = True,
    typo: bool = True,
    first_letter_typos: bool = False,
) -> ParsedQuery:
    """The query's tree. `prefix`: mark the last word (unless the query ends in a space or
    punctuation other than `*`, which say the word is finished); `typo`: allow typos by
    the settings' rules; `first_letter_typos`: a word allowed a typo may have it in its
    first letter, counted as one (the retry of a query that found nothing)."""
    q = blank_control_chars(q)
    stop = {normalize(w) for w in settings.stop_words}
    synonyms = settings.alternatives()
    groups: list[tuple[Term, ...]] = []
    last_marks = ""  # the punctuation after the query's last word
    for clauses in split_websearch(q):
        terms: list[Term] = []
        for text, negated, quoted in clauses:
            marked = None if quoted else _MARKED_WORD.fullmatch(text)
            if marked:
                # The word alone gets typos and the prefix; a `*` asks for the prefix.
                text, last_marks = marked[1], marked[2]
            else:
                last_marks = ""
            key = normalize(text)
            if not quoted and key in stop:
                continue
            term = Term(text, negated, quoted, tuple(synonyms.get(key, ())))
            if typo and not negated and not quoted and term.word is not None:
                typos = allowed_typos(text, settings.typo_tolerance)
                first_letter = first_letter_typos and typos > 0
                term = Term(**{**term.__dict__, "typos": typos, "first_letter": first_letter})
            terms.append(term)
        if terms:
            groups.append(tuple(terms))
    # A query ending in anything but a word's letter says its last word is finished: a
    # blank, a closing quote, punctuation; a `*` asks for the prefix.
    typing = bool(_WORD_RE.fullmatch(q[-1:]))
    if prefix and groups and (typing or "*" in last_marks):
        last = groups[-1][-1]
        if not last.negated and last.word is not None and len(last.text) >= MIN_PREFIX_CHARS:
            groups[-1] = (*groups[-1][:-1], Term(**{**last.__dict__, "prefix": True}))
    return ParsedQuery(tuple(groups))


# -- PostgreSQL: text for to_tsquery(config, …) ----------------------------------------------


def _quoted(text: str) -> str | None:
    """A to_tsquery operand whose words the configuration's parser reads as it reads the
    documents (several become a phrase): the text as typed, its quotes and backslashes
    escaped."""
    cleaned = normalize(text)
    escaped = cleaned.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'" if cleaned else None


def tsquery_text(
    parsed: ParsedQuery,
    typo_words: dict[int, list[str]] | None = None,
    typo_weights: str = "",
    *,
    plain_words_only: bool = False,
) -> str:
    """The query as to_tsquery's input. `typo_words`: term index (in `parsed.terms`
    order) → words that to_tsquery stems to the indexed lexemes within that term's
    typos (none: the exact query);
    `typo_weights`: the field weights those may match in (empty: all);
    `plain_words_only`: without the prefix being typed and the negated terms."""
    typo_words = typo_words or {}
    ors: list[str] = []
    index = 0
    for group in parsed.groups:
        ands: list[str] = []
        for term in group:
            if plain_words_only and (term.prefix or term.negated):
                index += 1
                continue
            options = [o for o in (_quoted(a) for a in term.alternatives) if o]
            if term.prefix and options:
                options[0] = f"{options[0]}:*"
            suffix = f":{typo_weights}" if typo_weights else ""
            options += [f"'{word}'{suffix}" for word in typo_words.get(index, ())]
            index += 1
            if not options:
                continue
            expr = options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"
            ands.append(f"!{expr}" if term.negated else expr)
        if ands:
            ors.append(ands[0] if len(ands) == 1 else "(" + " & ".join(ands) + ")")
    return " | ".join(ors)
