"""Document files: originals stored once by content, each document's link to its file,
and the per-page text of extracted documents.

`files` is content-addressed (SHA-256): identical bytes uploaded twice, to any collection,
are stored once. The bytes live in `file_chunks` as `bytea` rows of up to 1 MiB, written in
the upload's transaction with the document row, the task and the outbox row, so a 202 means
the original is as durable as the document (bench/notes.md, "Design decisions", weighs
this against large objects and a volume store). Chunks are stored without compression:
most uploads (PDF streams, zip formats) are compressed already.

`document_files` ties a document to its original and records the extraction: `version` is
the document version the file belongs to, `extracted_version` the one the worker extracted
for (the worker extracts while they differ), `extractor` the extractor's version (a
reindex re-extracts documents of another one) and `error` why the last extraction failed.
A JSON write that replaces a file document bumps its version past `version`: the link is
then stale and ignored.

`document_pages` keeps each page's text of a paged document (PDF) with its tsvector, so a
search can say which pages of the returned hits matched.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE files (
            sha256     bytea PRIMARY KEY,
            size       bigint NOT NULL,
            chunks     integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE file_chunks (
            sha256 bytea NOT NULL REFERENCES files(sha256) ON DELETE CASCADE,
            seq    integer NOT NULL,
            data   bytea NOT NULL,
            PRIMARY KEY (sha256, seq)
        );
        ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

        CREATE TABLE document_files (
            collection_id     bigint NOT NULL,
            doc_id            text NOT NULL,
            sha256            bytea NOT NULL REFERENCES files(sha256),
            filename          text,
            content_type      text NOT NULL,
            base              jsonb NOT NULL,
            version           bigint NOT NULL,
            extracted_version bigint,
            extractor         text,
            error             text,
            PRIMARY KEY (collection_id, doc_id),
            FOREIGN KEY (collection_id, doc_id) REFERENCES documents (collection_id, id)
                ON DELETE CASCADE
        );
        CREATE INDEX document_files_sha256_idx ON document_files (sha256);

        CREATE TABLE document_pages (
            collection_id bigint NOT NULL,
            doc_id        text NOT NULL,
            page          integer NOT NULL,
            text          text NOT NULL,
            tsv           tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            PRIMARY KEY (collection_id, doc_id, page),
            FOREIGN KEY (collection_id, doc_id) REFERENCES document_files (collection_id, doc_id)
                ON DELETE CASCADE
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE document_pages, document_files, file_chunks, files")
