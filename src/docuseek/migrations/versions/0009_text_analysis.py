"""Text analysis per collection: a language, accent folding, and the parts of joined words.

`language` and `unaccent` are the schema's; `live_language` and `live_unaccent` what the
live generation was indexed with, which its searches must use until a reindex has built a
generation with the schema's (see collections.needs_rebuild).

`split_joined` turns the separators that PostgreSQL's parser keeps inside one file, host,
email or version token (`JSON/UBJSON`, `System.DirectoryServices`, `user@example.org`) into
spaces, so each part is a word of the tsvector; elsewhere they separate words anyway. The
query side does the same (see bench/notes.md, 'Design decisions: tokenization').

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from docuseek.search.postgres.layout import SCHEMA

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SPLIT_JOINED = r"""
CREATE OR REPLACE FUNCTION {schema}.split_joined(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT translate(t, '/.@', '   ')
$$
""".replace("{schema}", SCHEMA)

_DROP_CONFIGS = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.cfgname FROM pg_ts_config c
    JOIN pg_namespace n ON n.oid = c.cfgnamespace AND n.nspname = '{schema}'
  LOOP
    EXECUTE format('DROP TEXT SEARCH CONFIGURATION {schema}.%I', r.cfgname);
  END LOOP;
END $$
""".replace("{schema}", SCHEMA)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE collections ADD COLUMN language text NOT NULL DEFAULT 'english',"
        " ADD COLUMN unaccent boolean NOT NULL DEFAULT false,"
        " ADD COLUMN live_language text NOT NULL DEFAULT 'english',"
        " ADD COLUMN live_unaccent boolean NOT NULL DEFAULT false"
    )
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(SPLIT_JOINED)


def downgrade() -> None:
    op.execute(_DROP_CONFIGS)
    op.execute(f"DROP FUNCTION {SCHEMA}.split_joined(text)")
    op.execute(
        "ALTER TABLE collections DROP COLUMN language, DROP COLUMN unaccent,"
        " DROP COLUMN live_language, DROP COLUMN live_unaccent"
    )
