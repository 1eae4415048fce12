"""Impact tokens for ranking broad queries on the PostgreSQL backend.

A query matching more than PG_EXACT_LIMIT documents cannot be ranked by reading every
match. Each index row therefore keeps, for every word it holds more than once, a token
naming the word, its highest field weight and a level of how much ts_rank rewards its
repetitions (`word_impacts`, a generated column with its own GIN index). The planner
reads the rows at the highest levels of the query's words, ranks those few exactly and
lists them first (see bench/notes.md, 'Design decisions: broad query ranking').

Existing index tables get the column here: PostgreSQL computes it from the stored
tsvector, rewriting each table once.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from docuseek.search.postgres.layout import IMPACTS_COLUMN, SCHEMA, WORD_IMPACTS

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_EACH_TABLE = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '{schema}'
    WHERE c.relkind = 'r' AND c.relname ~ '^c[0-9]+_g[0-9]+$'
  LOOP
    {body}
  END LOOP;
END $$
""".replace("{schema}", SCHEMA)

_ADD = (
    "EXECUTE format('ALTER TABLE {schema}.%I ADD COLUMN IF NOT EXISTS {column}', r.relname);"
    " EXECUTE format('CREATE INDEX IF NOT EXISTS %s ON {schema}.%I USING gin (impacts)',"
    " r.relname || '_impacts', r.relname);"
)
_DROP = "EXECUTE format('ALTER TABLE {schema}.%I DROP COLUMN IF EXISTS impacts', r.relname);"


def upgrade() -> None:
    op.execute(WORD_IMPACTS)
    add = _ADD.replace("{schema}", SCHEMA).replace("{column}", IMPACTS_COLUMN.replace("'", "''"))
    op.execute(_EACH_TABLE.replace("{body}", add))


def downgrade() -> None:
    op.execute(_EACH_TABLE.replace("{body}", _DROP.replace("{schema}", SCHEMA)))
    op.execute(f"DROP FUNCTION {SCHEMA}.word_impacts(tsvector)")
