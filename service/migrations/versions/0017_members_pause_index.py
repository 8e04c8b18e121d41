"""`ix_members_status_paused_until`: the clock looks every second for paused members whose pause
has run out (`consent.end_pauses`); without an index that read every member, about 4 ms a tick at
60,000 members on PostgreSQL, and on SQLite while it held the write lock.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_members_status_paused_until", "members", ["status", "paused_until"])


def downgrade() -> None:
    op.drop_index("ix_members_status_paused_until", table_name="members")
