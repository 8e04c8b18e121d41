"""`schedules.retry_at`: a scheduled run that found members busy (a vote's question just sent)
tries again for them every ten minutes within the slot's hour, instead of leaving them without
that day's check-in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

import service.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("schedules", sa.Column("retry_at", service.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("retry_at")
