"""PostgreSQL index tables stop keeping a copy of each document: the page's documents are
read from `documents` (10 rows per search), and without the copy the rows the index scans
(the capped count, the tier walk, phrase rechecks) are about half as wide (see
bench/notes.md, 'Design decisions: no document copy in the index tables').

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from docuseek.search.postgres.layout import SCHEMA

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every generation table `<SCHEMA>.c<collection id>_g<generation>` (as r.t, with its
# collection id as r.cid) that has, or has not, the column.
_TABLES = """
    SELECT c.oid::regclass AS t, substring(c.relname from '^c([0-9]+)_g')::bigint AS cid
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = '{schema}'
    WHERE c.relkind = 'r' AND c.relname ~ '^c[0-9]+_g[0-9]+$' AND {negation} EXISTS (
        SELECT 1 FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attname = 'doc' AND NOT a.attisdropped)
""".replace("{schema}", SCHEMA)


def _for_each_table(with_doc: bool, statements: str) -> None:
    tables = _TABLES.format(negation="" if with_doc else "NOT")
    op.execute(
        f"DO $$ DECLARE r record; BEGIN FOR r IN {tables} LOOP {statements} END LOOP; END $$"
    )


def upgrade() -> None:
    # Dropping a column only changes the catalog; the space returns as rows are rewritten.
    _for_each_table(True, "EXECUTE format('ALTER TABLE %s DROP COLUMN doc', r.t);")


def downgrade() -> None:
    _for_each_table(
        False,
        "EXECUTE format('ALTER TABLE %s ADD COLUMN doc jsonb', r.t);"
        " EXECUTE format('UPDATE %s t SET doc = d.body FROM documents d"
        " WHERE t.live AND d.collection_id = %s AND d.id = t.id', r.t, r.cid);",
    )
