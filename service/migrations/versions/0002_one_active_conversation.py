"""At most one conversation in progress per member, enforced by the database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_conversations_one_active", "conversations", ["member_id"], unique=True,
                    postgresql_where=sa.text("active"), sqlite_where=sa.text("active"))


def downgrade() -> None:
    op.drop_index("uq_conversations_one_active", table_name="conversations")
