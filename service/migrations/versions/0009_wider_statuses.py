"""Twilio's longest message status, `partially_delivered`, is 19 characters: the outbox's
`delivery_status` and `status_events.status` are 24 wide.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (("outbound_messages", "delivery_status", True), ("status_events", "status", False))


def upgrade() -> None:
    # SQLite keeps a VARCHAR's length as a note only; rebuilding the table to change it would gain nothing.
    if op.get_bind().dialect.name != "sqlite":
        for table, column, nullable in COLUMNS:
            op.alter_column(table, column, type_=sa.String(24), existing_type=sa.String(16),
                            existing_nullable=nullable)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("UPDATE outbound_messages SET delivery_status = 'delivered'"
                   " WHERE delivery_status = 'partially_delivered'")
        op.execute("DELETE FROM status_events WHERE status = 'partially_delivered'")
        for table, column, nullable in COLUMNS:
            op.alter_column(table, column, type_=sa.String(16), existing_type=sa.String(24),
                            existing_nullable=nullable)
