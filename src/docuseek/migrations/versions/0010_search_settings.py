"""Query-time search settings per collection, the vocabulary of every index table, and an
index for counting a collection's pending tasks.

- `collections.search_settings` (jsonb): synonyms, stop words, typo tolerance; read when a
  query is parsed, so a change needs no reindex.
- `<index table>_vocab`: every lexeme the table's documents were indexed with, for typo
  tolerance; filled here for the tables that exist, kept by the index writes afterwards.
  Candidates are found by first letter and length (a btree) and checked with
  fuzzystrmatch's `levenshtein_less_equal` (the extension is created here).
- `tasks_pending_idx`: every search response counts the collection's enqueued and
  processing tasks, which must not read every task the collection ever had.

Revision ID: 0010
Revises: 0009
"""

from alembic import op
from sqlalchemy import text

from docuseek.search.postgres.layout import SCHEMA, vocabulary_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    op.execute(
        "ALTER TABLE collections ADD COLUMN search_settings jsonb NOT NULL DEFAULT '{}'::jsonb"
    )
    op.execute(
        "CREATE INDEX tasks_pending_idx ON tasks (collection)"
        " WHERE status IN ('enqueued', 'processing')"
    )
    conn = op.get_bind()
    tables = conn.execute(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :schema"
            " AND tablename ~ '^c[0-9]+_g[0-9]+$'"
        ),
        {"schema": SCHEMA},
    ).scalars()
    for short in list(tables):
        table = f"{SCHEMA}.{short}"
        vocabulary = vocabulary_table(table)
        op.execute(f"CREATE TABLE IF NOT EXISTS {vocabulary} (lexeme text PRIMARY KEY)")
        op.execute(
            f"INSERT INTO {vocabulary} SELECT DISTINCT x.lexeme FROM {table}, unnest(tsv) AS x"
            " ON CONFLICT DO NOTHING"
        )
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {short}_vocab_shape ON {vocabulary}"
            " (left(lexeme, 1), length(lexeme))"
        )


def downgrade() -> None:
    conn = op.get_bind()
    tables = conn.execute(
        text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :schema"
            " AND tablename ~ '^c[0-9]+_g[0-9]+_vocab$'"
        ),
        {"schema": SCHEMA},
    ).scalars()
    for short in list(tables):
        op.execute(f'DROP TABLE {SCHEMA}."{short}"')
    op.execute("DROP INDEX tasks_pending_idx")
    op.execute("ALTER TABLE collections DROP COLUMN search_settings")
