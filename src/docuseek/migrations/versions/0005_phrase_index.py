"""Phrase index for the PostgreSQL backend (`index_phrases` on a collection; off for the
collections that exist when it runs, on by default for new ones, see schema.py).

A GIN index over tsvectors keeps no positions, so a phrase is checked on every row that
holds all of its words, which for a phrase of common words is many times its matches (see
bench/notes.md, 'Design decisions: phrase word pairs'). A collection created
with `index_phrases` keeps, per document, the hashes of its adjacent word pairs
(`word_pairs`, a generated column in the shared match index): a phrase query then first
asks for its pairs, which only the phrase's own matches hold. OpenSearch's
`index_phrases` does the same with shingles; like it, this costs indexing time.

`word_pairs` reads positions from the stored tsvector, so pairs never run across the gap
between two fields, and every pair of lexemes the phrase check could find at positions p
and p + 1 is there (a join on positions rather than lead(): past position 16,383, where
PostgreSQL puts every later word, one position holds many lexemes), and cheaper than a
window function.
hashtext() is what hash partitioning stores rows by, so its values are stable across
PostgreSQL versions; a collision only lets a row through to the phrase check.

Revision ID: 0005
Revises: 0004
"""

import importlib

from alembic import op

from docuseek.search.postgres.layout import SCHEMA

# 0004's loop rebuilds a match index over tsv and the keyword columns (downgrade).
_shared_match_index = importlib.import_module(
    "docuseek.migrations.versions.0004_shared_match_index"
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WORD_PAIRS = """
CREATE OR REPLACE FUNCTION {schema}.word_pairs(v tsvector) RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  WITH l AS MATERIALIZED (SELECT lexeme, unnest(positions) AS pos FROM unnest(v))
  SELECT array_agg(hashtext(a.lexeme || ' ' || b.lexeme))
  FROM l AS a JOIN l AS b ON b.pos = a.pos + 1
$$
""".replace("{schema}", SCHEMA)


def upgrade() -> None:
    op.execute("ALTER TABLE collections ADD COLUMN index_phrases boolean NOT NULL DEFAULT false")
    op.execute(WORD_PAIRS)


_DROP_PAIRS = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '{schema}'
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'pairs' AND NOT a.attisdropped
    WHERE c.relkind = 'r' AND c.relname ~ '^c[0-9]+_g[0-9]+$'
  LOOP
    EXECUTE format('ALTER TABLE {schema}.%I DROP COLUMN pairs', r.relname);
  END LOOP;
END $$
""".replace("{schema}", SCHEMA)


def downgrade() -> None:
    # Dropping `pairs` drops the match index that holds it: 0004's rule builds it again
    # over tsv and the keyword columns, as 0004's code expects it.
    op.execute(_DROP_PAIRS)
    op.execute(_shared_match_index._LOOP.replace("{body}", _shared_match_index._UPGRADE))
    op.execute(f"DROP FUNCTION {SCHEMA}.word_pairs(tsvector)")
    op.execute("ALTER TABLE collections DROP COLUMN index_phrases")
