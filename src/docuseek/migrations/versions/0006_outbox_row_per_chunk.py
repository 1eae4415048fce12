"""One outbox row per chunk of a write (up to `OUTBOX_CHUNK` documents), not per document.

A row per document cost the write path about 40% of its time per document in PostgreSQL
(an insert into three indexes and two foreign-key checks each; see bench/notes.md,
'Design decisions: outbox rows per chunk'), and the worker a row lock and a delete per
document, with autovacuum behind them. A row carries its documents' ids and versions as
two arrays of equal length.

`outbox_doc_idx` (collection_id, doc_id) becomes an index on collection_id: the queries
that looked for one id (a re-sent unchanged document, reconcile) read the collection's
rows and unnest them, and the collections foreign key keeps an index for its cascade.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE outbox ADD COLUMN doc_ids text[], ADD COLUMN versions bigint[];
        UPDATE outbox SET doc_ids = ARRAY[doc_id], versions = ARRAY[version];
        ALTER TABLE outbox ALTER COLUMN doc_ids SET NOT NULL,
            ALTER COLUMN versions SET NOT NULL,
            ADD CONSTRAINT outbox_ids_match_versions CHECK (
                cardinality(doc_ids) > 0 AND cardinality(doc_ids) = cardinality(versions));
        DROP INDEX outbox_doc_idx;
        ALTER TABLE outbox DROP COLUMN doc_id, DROP COLUMN version;
        CREATE INDEX outbox_collection_idx ON outbox (collection_id);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE outbox DROP CONSTRAINT outbox_ids_match_versions,
            ADD COLUMN doc_id text, ADD COLUMN version bigint;
        INSERT INTO outbox (collection_id, doc_id, version, doc_ids, versions, op, task_id,
                            attempts, available_at, enqueued_at, last_error)
        SELECT o.collection_id, d.doc_id, d.version, '{}', '{}', o.op, o.task_id,
               o.attempts, o.available_at, o.enqueued_at, o.last_error
        FROM outbox o, unnest(o.doc_ids, o.versions) AS d(doc_id, version)
        WHERE o.doc_id IS NULL;
        DELETE FROM outbox WHERE doc_id IS NULL;
        ALTER TABLE outbox DROP COLUMN doc_ids, DROP COLUMN versions,
            ALTER COLUMN doc_id SET NOT NULL, ALTER COLUMN version SET NOT NULL;
        DROP INDEX outbox_collection_idx;
        CREATE INDEX outbox_doc_idx ON outbox (collection_id, doc_id);
        """
    )
