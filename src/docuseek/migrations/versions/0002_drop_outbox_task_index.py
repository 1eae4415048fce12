"""Drop outbox_task_idx: no query reads outbox by task, and every queued row paid for it.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS outbox_task_idx")


def downgrade() -> None:
    op.execute("CREATE INDEX outbox_task_idx ON outbox (task_id)")
