"""`conversations.suspended_at`: a facilitator's flow (a vote, an RSVP) that another flow started
over waits behind it, and resumes when that one ends, instead of being ended.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

import service.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("suspended_at", service.models.base.UTCDateTime(timezone=True),
                                             nullable=True))


def downgrade() -> None:
    # Plain DDL, no batch mode: a batch rebuild of `conversations` on SQLite would drop a table
    # that results, alerts and timers refer to (foreign keys are on). SQLite has DROP COLUMN since 3.35.
    op.drop_column("conversations", "suspended_at")
