"""How a collection generation is laid out in PostgreSQL, as SQL fragments.

One table per generation in the `docuseek_index` schema:

    id text PRIMARY KEY, version bigint, live boolean,
    "f_<field>"        one typed column per non-text field: keyword text[], integer
                       bigint, float float8, date timestamptz (btree), boolean
    tsv tsvector       every text field, weighted A–D
    tsv_top tsvector   only the text fields of the highest weight, when that is a strict
                       subset (GIN): big result sets list these matches first
    impacts text[]     impact tokens of the words a row holds more than once (GIN),
                       generated from tsv: broad queries rank these rows first (0011)
    pairs int[]        collections with index_phrases only: hashes of tsv's adjacent
                       lexeme pairs, generated from tsv (migration 0005)

in that order in tables made since the filter columns came first; older tables have
them after `pairs`, and columns added later come last in any table.

`tsv`, the keyword columns (and `pairs`) share one multi-column GIN index (`<table>_match_<hash of
its columns>`), so a query with a keyword filter intersects the term's and the filter's
posting lists inside that index rather than ANDing the bitmaps of two GIN indexes
(migration 0004 moved existing tables to it; see bench/notes.md, 'Design decisions: one
GIN index for words and keyword filters'). An index holds at most 32 columns: keyword
columns past that room get a GIN index each (`<table>_kw_<hash of the column>`).

Filters, facets and sorts read typed columns (indexed), never the JSON document. The
documents of a page (and their highlights) come from the `documents` table: no copy here
keeps the rows that counts and tier walks scan narrow (migration 0003).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from docuseek.schema import Collection, FieldSpec, TextAnalysis

SCHEMA = "docuseek_index"
WEIGHT_ORDER = "ABCD"
FIELD_GAP = "field gap"  # a lexeme no parser emits (it holds a space): Layout.tsvector
FIELD_GAP_POSITIONS = 100
INDEX_MAX_COLUMNS = 32  # PostgreSQL's INDEX_MAX_KEYS: the most columns one index may have

COLUMN_TYPES = {
    "keyword": "text[]",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "date": "timestamp with time zone",  # spelled as format_type() reports it
}
# What a parameter compared with the column is cast to.
PARAM_TYPES = {
    "keyword": "text",
    "integer": "bigint",
    "float": "double precision",
    "boolean": "boolean",
    "date": "timestamptz",
}


def table_name(collection: Collection, generation: int) -> str:
    # Ids and generations are integers: safe to splice into identifiers.
    return f"{SCHEMA}.c{int(collection.id)}_g{int(generation)}"


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


PLAIN_LEXEME = re.compile(r"[^'\\\s]+")  # a lexeme that needs no quoting in to_tsquery's text


def column(field: str) -> str:
    # Field names match [A-Za-z_][A-Za-z0-9_]*; quoting keeps their case.
    return f'"f_{field}"'


def config_name(analysis: TextAnalysis) -> str:
    """The text search configuration of an analysis: PostgreSQL's own for a language, or
    one in the index schema that first folds accents (`config_ddl` creates it)."""
    if not analysis.unaccent:
        return analysis.language
    return f"{SCHEMA}.{analysis.language}_unaccent"


def ts_config(collection: Collection, generation: int | None = None) -> str:
    """The text search configuration a collection's generation is indexed and searched
    with: the live generation's unless another generation is named (one being built by a
    reindex has the schema's)."""
    if generation is None:
        return config_name(collection.live_analysis)
    return config_name(collection.analysis_of(generation))


def config_ddl(analysis: TextAnalysis) -> list[str]:
    """Statements that create the analysis's configuration if it is not there: a copy of
    the language's with the `unaccent` dictionary before its stemmer for the token types
    that can carry accents. Names come from the validated list of languages."""
    if not analysis.unaccent:
        return []
    language = analysis.language
    short = f"{language}_unaccent"
    stem = "simple" if language == "simple" else f"{language}_stem"
    # The lock makes two concurrent creators take turns instead of one failing on the
    # name; the dictionary is found wherever the extension was installed.
    return [
        f"""DO $$
DECLARE dict text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('docuseek text search configurations'));
  IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                 WHERE n.nspname = '{SCHEMA}' AND c.cfgname = '{short}') THEN
    CREATE EXTENSION IF NOT EXISTS unaccent;
    SELECT quote_ident(n.nspname) || '.unaccent' INTO dict FROM pg_ts_dict d
      JOIN pg_namespace n ON n.oid = d.dictnamespace WHERE d.dictname = 'unaccent' LIMIT 1;
    CREATE TEXT SEARCH CONFIGURATION {SCHEMA}.{short} (COPY = pg_catalog.{language});
    EXECUTE format('ALTER TEXT SEARCH CONFIGURATION {SCHEMA}.{short}'
                   ' ALTER MAPPING FOR word, hword, hword_part WITH %s, {stem}', dict);
  END IF;
END $$"""
    ]


def query_sql(collection: Collection, param: str = "q") -> str:
    """The query's tsquery, from the search's parameter `param`: to_tsquery's text built by
    search.query.tsquery_text (psycopg placeholder style: searches run on the driver's
    connection, see backend.py), in the live generation's configuration."""
    return f"to_tsquery('{ts_config(collection)}', %({param})s)"


def vocabulary_table(table: str) -> str:
    """The generation's vocabulary: every lexeme its documents were ever indexed with,
    where typo tolerance looks for the words a query word may have meant."""
    return f"{table}_vocab"


# Collections with index_phrases (migration 0005): `pairs` holds the hashes of the adjacent
# lexeme pairs of `tsv` (computed by the server from the stored positions).
PAIRS_COLUMN = f"pairs int[] GENERATED ALWAYS AS ({SCHEMA}.word_pairs(tsv)) STORED"
# ts_rank's default weights of D, C, B, A: the impact levels below follow its arithmetic.
RANK_WEIGHTS = {"A": 1.0, "B": 0.4, "C": 0.2, "D": 0.1}
# Impact levels of a word a row holds more than once: what ts_rank adds for the word's
# further occurrences, as a share of its best occurrence's weight (0 to 0.645: ts_rank
# divides by pi^2/6). A row's token for the word is `<lexeme> <best weight><level>`.
IMPACT_LEVELS = (0.04, 0.06, 0.075, 0.09, 0.11, 0.15, 0.22, 0.28, 0.34, 0.42, 0.5)
_WEIGHT_OF = " ".join(f"WHEN '{k}' THEN {v}" for k, v in RANK_WEIGHTS.items())
# One token per lexeme with two positions or more whose level is at least 1. The share is
# calc_rank_or's (PostgreSQL's tsrank.c) for a one-word query, less the best occurrence.
# A loop in PL/pgSQL: an SQL function with a subquery per lexeme cost twice as much.
WORD_IMPACTS = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.word_impacts(v tsvector) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $$
DECLARE
  u record;
  w float8;
  best float8;
  best_at int;
  top text;
  total float8;
  level int;
  tokens text[] := '{{}}';
BEGIN
  FOR u IN SELECT lexeme, weights FROM unnest(v) WHERE cardinality(positions) > 1 LOOP
    best := 0; total := 0; best_at := 1; top := 'D';
    FOR i IN 1 .. cardinality(u.weights) LOOP
      w := CASE u.weights[i] {_WEIGHT_OF} END;
      total := total + w / (i * i);
      IF w > best THEN best := w; best_at := i; top := u.weights[i]; END IF;
    END LOOP;
    level := width_bucket((total - best / (best_at * best_at)) / best,
                          ARRAY[{", ".join(map(str, IMPACT_LEVELS))}]::float8[]);
    IF level > 0 THEN tokens := tokens || (u.lexeme || ' ' || top || level); END IF;
  END LOOP;
  RETURN CASE WHEN cardinality(tokens) > 0 THEN tokens END;
END
$$
"""
IMPACTS_COLUMN = f"impacts text[] GENERATED ALWAYS AS ({SCHEMA}.word_impacts(tsv)) STORED"


def impact_tokens(lexeme: str, weight: str, min_level: int) -> list[str]:
    """The tokens of `lexeme` at `weight` from `min_level` up (see IMPACT_LEVELS)."""
    return [f"{lexeme} {weight}{level}" for level in range(min_level, len(IMPACT_LEVELS) + 1)]


# A token of a tsquery's text form: a quoted lexeme (quotes doubled inside) with an
# optional `:*`/weight suffix, or an operator.
_TSQUERY_TOKEN = re.compile(
    r"\s*(?:(?P<lexeme>'(?:[^']|'')*')(?P<suffix>:[*A-D]+)?|(?P<op><->|<\d+>|[&|!()]))"
)


def is_one_pair(tsquery: str) -> bool:
    """Whether the query (its text form) is one phrase of two lexemes, `'a' <-> 'b'`: then a
    row holds its pair exactly when it matches it, but for a collision of two pairs'
    32-bit hashes."""
    pairs, complete = required_pairs(tsquery)
    return complete and len(pairs) == 1 and len(_TSQUERY_TOKEN.findall(tsquery)) == 3


def required_pairs(tsquery: str) -> tuple[list[str], bool]:
    """The adjacent lexeme pairs every match of `tsquery` (its text form) holds: each
    `'a' <-> 'b'` of a query made only of AND and phrase operators. Empty when the query
    has OR or NOT (a pair would not be required), when its text is not understood, or when
    it has no such pair: then the pairs cannot narrow the search, and are not used.
    Second: whether every lexeme of the query is in one of the pairs (then the words add
    nothing to what the pairs find)."""
    if "\\" in tsquery:
        return [], False
    tokens: list[tuple[str, str]] = []  # (kind, value): ("lexeme", text) or ("op", op)
    position = 0
    while position < len(tsquery.rstrip()):
        token = _TSQUERY_TOKEN.match(tsquery, position)
        if token is None:
            return [], False
        position = token.end()
        if token["op"] is not None:
            if token["op"] in ("|", "!"):
                return [], False
            tokens.append(("op", token["op"]))
        elif token["suffix"]:
            tokens.append(("other", ""))  # a prefix or weighted lexeme: no pair with it
        else:
            tokens.append(("lexeme", token["lexeme"][1:-1].replace("''", "'")))
    pairs, paired = [], set()
    for i, (left, op, right) in enumerate(zip(tokens, tokens[1:], tokens[2:], strict=False)):
        if left[0] == right[0] == "lexeme" and op == ("op", "<->"):
            pairs.append(f"{left[1]} {right[1]}")
            paired |= {i, i + 2}
    words = {i for i, (kind, _) in enumerate(tokens) if kind != "op"}
    return list(dict.fromkeys(pairs)), bool(pairs) and words <= paired


def required_lexemes(tsquery: str) -> list[str]:
    """The lexemes whose impact tokens may pick a query's best matches, from its text form:
    each plain or prefix lexeme of the AND-ed parts, and of a group of alternatives (a word
    with its typo candidates or synonyms) its first one, the word as typed. None when the
    query itself is an OR of parts or its text is not understood. Any choice is safe: the
    rows picked by them are always filtered by the whole query too."""
    if "\\" in tsquery:
        return []
    # One frame per open parenthesis: (lexemes, whether it holds alternatives, negated).
    frames: list[tuple[list[str], list[bool], bool]] = [([], [False], False)]
    position, negated = 0, False
    while position < len(tsquery.rstrip()):
        token = _TSQUERY_TOKEN.match(tsquery, position)
        if token is None:
            return []
        position = token.end()
        op = token["op"]
        if op == "(":
            frames.append(([], [False], negated))
        elif op == ")":
            if len(frames) == 1:
                return []
            lexemes, alternatives, group_negated = frames.pop()
            if not group_negated:
                frames[-1][0].extend(lexemes[:1] if alternatives[0] else lexemes)
        elif op == "|":
            if len(frames) == 1:
                return []  # the query is an OR of parts: no lexeme is needed by every match
            frames[-1][1][0] = True
        elif op is None and not negated and token["suffix"] in (None, ":*"):
            frames[-1][0].append(token["lexeme"][1:-1].replace("''", "'"))
        negated = op == "!"
    return list(dict.fromkeys(frames[0][0]))


@dataclass(frozen=True)
class Layout:
    collection: Collection
    generation: int | None = None  # the live one if None: only its text config depends on it
    # Characters of each text field indexed, all if None: for a document whose words do
    # not fit in one tsvector (1 MB), which is then indexed as far as they do.
    text_limit: int | None = None

    @property
    def config(self) -> str:
        return ts_config(self.collection, self.generation)

    @property
    def typed_fields(self) -> list[FieldSpec]:
        return [f for f in self.collection.fields.values() if f.type != "text"]

    @property
    def top_fields(self) -> list[FieldSpec]:
        """Text fields of the highest weight, if they are not all of them (else: no tiers)."""
        text_fields = self.collection.text_fields
        if not text_fields:
            return []
        best = min(WEIGHT_ORDER.index(f.weight) for f in text_fields)
        top = [f for f in text_fields if WEIGHT_ORDER.index(f.weight) == best]
        return top if len(top) < len(text_fields) else []

    # -- computing the columns from a JSON document --------------------------------------

    @staticmethod
    def tsvector(
        fields: list[FieldSpec], doc: str, config: str = "english", limit: int | None = None
    ) -> str:
        """The fields' weighted vectors, joined with a gap so that a phrase cannot run
        from the end of one field into the start of the next (`a || b` only shifts b past
        a's last position): a placeholder lexeme holds the gap and is then deleted.
        Words joined by `/`, `.` or `@`, which PostgreSQL's parser keeps whole as one file,
        host, email or version token, are indexed as their parts (`split_joined`), at
        consecutive positions as OpenSearch's analyzer puts them."""
        texts = [f"coalesce({doc}->>{quote_literal(f.name)}, '')" for f in fields]
        if limit is not None:
            texts = [f"left({t}, {int(limit)})" for t in texts]
        parts = [
            f"setweight(to_tsvector('{config}', {SCHEMA}.split_joined({t})), '{f.weight}')"
            for f, t in zip(fields, texts, strict=True)
        ]
        if len(parts) <= 1:
            return parts[0] if parts else "NULL::tsvector"
        # `'field gap':100`, the colon escaped for text(). 100 positions, as OpenSearch's
        # position_increment_gap: phrases with stop words (`fox <2> dog`) stay inside too.
        at = f"{chr(92)}:{FIELD_GAP_POSITIONS}"
        gap = f" || {quote_literal(quote_literal(FIELD_GAP) + at)}::tsvector || "
        return f"ts_delete({gap.join(parts)}, {quote_literal(FIELD_GAP)})"

    @staticmethod
    def typed_value(spec: FieldSpec, doc: str) -> str:
        key = quote_literal(spec.name)
        if spec.type == "keyword":
            value = f"{doc}->{key}"
            # A string (the usual case) without the sub-select an array needs.
            return (
                f"CASE jsonb_typeof({value}) WHEN 'string' THEN ARRAY[{value} #>> '{{}}']"
                f" WHEN 'array' THEN NULLIF(ARRAY(SELECT jsonb_array_elements_text({value})),"
                " '{}') END"
            )
        return f"({doc}->>{key})::{COLUMN_TYPES[spec.type]}"

    def insert_columns(self, doc: str) -> list[tuple[str, str]]:
        """(column, expression) for every derived column of an upsert."""
        columns = [
            ("tsv", self.tsvector(self.collection.text_fields, doc, self.config, self.text_limit)),
            ("tsv_top", self.tsvector(self.top_fields, doc, self.config, self.text_limit)),
        ]
        columns += [(column(f.name), self.typed_value(f, doc)) for f in self.typed_fields]
        return columns  # `pairs`, if any, is generated from tsv

    def cluster_columns(self) -> list[str]:
        """The columns a batch's rows are written in order of: the facet columns by field
        name, then id. Rows sharing facet values land on the same pages, so a facet filter
        reads fewer heap pages; in arrival order each match took a page of its own (see
        bench/notes.md, 'Design decisions: batches written in facet order')."""
        facets = sorted(f.name for f in self.typed_fields if f.facet)
        return [*(column(name) for name in facets), "id"]

    # -- DDL -------------------------------------------------------------------------------

    def _keyword_columns(self) -> tuple[list[str], list[str]]:
        """The keyword columns by name: those in the shared GIN index, and those past its
        room, which get a GIN index each (a filter on them is ANDed with the match)."""
        keywords = sorted(f"f_{f.name}" for f in self.typed_fields if f.type == "keyword")
        room = INDEX_MAX_COLUMNS - 1 - (1 if self.collection.index_phrases else 0)
        return keywords[:room], keywords[room:]

    def match_columns(self) -> list[str]:
        """The columns of the shared GIN index, in a canonical order (migration 0004 spells
        the same rule in SQL: tsv, then the keyword columns by name)."""
        shared, _ = self._keyword_columns()
        # `pairs` last: the tables of migration 0004 never had it.
        return ["tsv", *shared, *(["pairs"] if self.collection.index_phrases else [])]

    def ddl(self, generation: int, existing: dict[str, str], indexes: set[str]) -> list[str]:
        """Statements that bring the table to this schema. `existing`: column → SQL type;
        `indexes`: the names of the table's indexes."""
        table = table_name(self.collection, generation)
        short = table.split(".", 1)[1]
        statements = config_ddl(self.collection.analysis_of(generation))
        # A new table has its filter and facet columns before the tsvectors: reading them
        # then skips no kilobyte of text (PostgreSQL finds a column by walking the ones
        # before it; see bench/notes.md, 'Design decisions: filter columns before the
        # text'). Columns added later go at the end.
        typed = "".join(f", {column(f.name)} {COLUMN_TYPES[f.type]}" for f in self.typed_fields)
        statements += [
            f"CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, version bigint NOT NULL,"
            f" live boolean NOT NULL{typed}, tsv tsvector, tsv_top tsvector)",
            f"CREATE INDEX IF NOT EXISTS {short}_tsv_top ON {table} USING gin (tsv_top)",
        ]
        statements += [
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {IMPACTS_COLUMN}",
            f"CREATE INDEX IF NOT EXISTS {short}_impacts ON {table} USING gin (impacts)",
        ]
        if self.collection.index_phrases:
            # In the match index with tsv: a phrase's pair (a short posting list) leads
            # the scan, its words' long lists are only skipped through.
            statements.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {PAIRS_COLUMN}")
        for spec in self.typed_fields:
            name = column(spec.name)
            wanted = COLUMN_TYPES[spec.type]
            have = existing.get(f"f_{spec.name}")
            if have is not None and have != wanted:
                # A retyped field: its values are refilled by the re-index the change queues.
                statements.append(f"ALTER TABLE {table} DROP COLUMN {name}")
            statements.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {wanted}")
            if spec.type not in ("keyword", "boolean"):
                index = f'"{short}_f_{spec.name}"'
                statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({name})")
        vocabulary = vocabulary_table(table)
        statements += [
            f"CREATE TABLE IF NOT EXISTS {vocabulary} (lexeme text PRIMARY KEY)",
            # Typo candidates share the first letter and have about the same length.
            f"CREATE INDEX IF NOT EXISTS {short}_vocab_shape ON {vocabulary}"
            " (left(lexeme, 1), length(lexeme))",
        ]
        match = match_index_name(short, self.match_columns())
        columns = ", ".join(f'"{c}"' for c in self.match_columns())
        statements.append(f'CREATE INDEX IF NOT EXISTS "{match}" ON {table} USING gin ({columns})')
        _, alone = self._keyword_columns()
        solo = {keyword_index_name(short, name): name for name in alone}
        for index_name, name in solo.items():
            statements.append(
                f'CREATE INDEX IF NOT EXISTS "{index_name}" ON {table} USING gin ("{name}")'
            )
        # A match index over another column set (a keyword field added or removed) is
        # replaced, and so is a keyword index of a column now in it or gone; the
        # one-column GIN indexes before it are migration 0004's business.
        for index_name in sorted(indexes):
            stale_match = index_name.startswith(f"{short}_match_") and index_name != match
            stale_solo = index_name.startswith(f"{short}_kw_") and index_name not in solo
            if stale_match or stale_solo:
                statements.append(f'DROP INDEX IF EXISTS {SCHEMA}."{index_name}"')
        return statements


def keyword_index_name(short_table: str, column_name: str) -> str:
    """A keyword column's own GIN index, named by a digest (a field name may be as long as
    PostgreSQL's identifiers)."""
    digest = hashlib.md5(column_name.encode(), usedforsecurity=False).hexdigest()
    return f"{short_table}_kw_{digest[:8]}"


def match_index_name(short_table: str, columns: list[str]) -> str:
    digest = hashlib.md5(",".join(columns).encode(), usedforsecurity=False).hexdigest()
    return f"{short_table}_match_{digest[:8]}"
