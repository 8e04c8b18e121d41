"""Each conversation records what started it, so a scheduled run that is started again (a second
clock, or a crash half-way, now that the run commits member by member) skips the members it
started already.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("origin", sa.String(200), nullable=True))
    op.create_index("ix_conversations_member_origin", "conversations", ["member_id", "origin"])


def downgrade() -> None:
    op.drop_index("ix_conversations_member_origin", table_name="conversations")
    # Plain DDL, no batch mode: a batch rebuild of `conversations` on SQLite would drop a table
    # that results, alerts and timers refer to (foreign keys are on). SQLite has DROP COLUMN since 3.35.
    op.drop_column("conversations", "origin")
