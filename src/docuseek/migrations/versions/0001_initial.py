"""Initial schema: keys, collections, documents, tasks, outbox, PostgreSQL search index schema.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One global, monotonic version for every document write (and delete), so an index
        -- that keeps the highest version it has seen is idempotent and order-safe.
        CREATE SEQUENCE document_version_seq;

        CREATE TABLE api_keys (
            id          bigserial PRIMARY KEY,
            name        text NOT NULL,
            prefix      text NOT NULL,
            key_hash    text NOT NULL UNIQUE,
            scopes      text[] NOT NULL,
            collections text[] NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE collections (
            id                  bigserial PRIMARY KEY,
            name                text NOT NULL UNIQUE,
            fields              jsonb NOT NULL,
            generation          integer NOT NULL DEFAULT 1,
            building_generation integer,
            created_at          timestamptz NOT NULL DEFAULT now(),
            updated_at          timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE documents (
            collection_id bigint NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            id            text NOT NULL,
            body          jsonb NOT NULL,
            version       bigint NOT NULL,
            content_hash  text NOT NULL,
            updated_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (collection_id, id)
        );

        CREATE TABLE tasks (
            id          bigserial PRIMARY KEY,
            type        text NOT NULL,
            collection  text NOT NULL,
            status      text NOT NULL DEFAULT 'enqueued'
                        CHECK (status IN ('enqueued', 'processing', 'succeeded', 'failed')),
            error       text,
            received    integer NOT NULL DEFAULT 0,
            indexed     integer NOT NULL DEFAULT 0,
            failed      integer NOT NULL DEFAULT 0,
            pending     integer NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            started_at  timestamptz,
            finished_at timestamptz
        );
        CREATE INDEX tasks_status_idx ON tasks (status, id);
        CREATE INDEX tasks_collection_idx ON tasks (collection, id);

        CREATE TABLE outbox (
            id            bigserial PRIMARY KEY,
            collection_id bigint NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            doc_id        text NOT NULL,
            version       bigint NOT NULL,
            op            text NOT NULL CHECK (op IN ('upsert', 'delete')),
            task_id       bigint REFERENCES tasks(id) ON DELETE SET NULL,
            attempts      integer NOT NULL DEFAULT 0,
            available_at  timestamptz NOT NULL DEFAULT now(),
            enqueued_at   timestamptz NOT NULL DEFAULT now(),
            last_error    text
        );
        CREATE INDEX outbox_available_idx ON outbox (available_at, id);
        CREATE INDEX outbox_doc_idx ON outbox (collection_id, doc_id);
        CREATE INDEX outbox_task_idx ON outbox (task_id);

        -- The PostgreSQL search backend keeps one table per collection generation here.
        CREATE SCHEMA IF NOT EXISTS docuseek_index;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP SCHEMA IF EXISTS docuseek_index CASCADE;
        DROP TABLE outbox, tasks, documents, collections, api_keys;
        DROP SEQUENCE document_version_seq;
        """
    )
