"""PostgreSQL index tables: `tsv` and the keyword columns move into one multi-column GIN
index, replacing their one-column GIN indexes. A query with a keyword filter then
intersects the term's and the filter's posting lists inside one index instead of building
two bitmaps and ANDing them (see bench/notes.md, 'Design decisions: one GIN index for
words and keyword filters'). The name and column order follow
`search.postgres.layout.Layout.match_columns` and `layout.match_index_name`.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from docuseek.search.postgres.layout import SCHEMA

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# For each generation table r (r.oid, r.relname): kws, its keyword columns by name (byte
# order, as Python's sorted()), and cols, the match index's columns.
_LOOP = """
DO $$
DECLARE r record; kws text[]; cols text[]; kw text;
BEGIN
  FOR r IN
    SELECT c.oid, c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '{schema}'
    WHERE c.relkind = 'r' AND c.relname ~ '^c[0-9]+_g[0-9]+$'
  LOOP
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attname::text COLLATE "C"), '{}')
      INTO kws FROM pg_attribute a
      WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        AND a.attname LIKE 'f\\_%' AND a.atttypid = 'text[]'::regtype;
    cols := ARRAY['tsv'] || kws;
    {body}
  END LOOP;
END $$
""".replace("{schema}", SCHEMA)

_UPGRADE = """
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON {schema}.%I USING gin (%s)',
        r.relname || '_match_' || left(md5(array_to_string(cols, ',')), 8), r.relname,
        (SELECT string_agg(quote_ident(x), ', ') FROM unnest(cols) AS x));
    EXECUTE format('DROP INDEX IF EXISTS {schema}.%I', r.relname || '_tsv');
    FOREACH kw IN ARRAY kws LOOP
      EXECUTE format('DROP INDEX IF EXISTS {schema}.%I', r.relname || '_' || kw);
    END LOOP;
""".replace("{schema}", SCHEMA)

_DOWNGRADE = """
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON {schema}.%I USING gin (tsv)',
        r.relname || '_tsv', r.relname);
    FOREACH kw IN ARRAY kws LOOP
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON {schema}.%I USING gin (%I)',
          r.relname || '_' || kw, r.relname, kw);
    END LOOP;
    EXECUTE format('DROP INDEX IF EXISTS {schema}.%I',
        r.relname || '_match_' || left(md5(array_to_string(cols, ',')), 8));
""".replace("{schema}", SCHEMA)


def upgrade() -> None:
    op.execute(_LOOP.replace("{body}", _UPGRADE))


def downgrade() -> None:
    op.execute(_LOOP.replace("{body}", _DOWNGRADE))
