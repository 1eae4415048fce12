"""API keys may expire: `expires_at` (NULL: never).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE api_keys ADD COLUMN expires_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE api_keys DROP COLUMN expires_at")
