"""When a member last texted is read from inbound_messages, not kept on the member.

Keeping `members.last_inbound_at` cost an UPDATE of the member on every inbound SMS; the newest
inbound row says the same, and the (member_id, received_at) index finds it at once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa

import service.models.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain DDL, no batch mode: a batch rebuild of `members` on SQLite would drop a table that other
    # rows refer to (foreign keys are on). SQLite has had DROP COLUMN since 3.35.
    op.drop_index("ix_inbound_messages_member_id", table_name="inbound_messages")
    op.create_index("ix_inbound_messages_member_received", "inbound_messages", ["member_id", "received_at"])
    op.execute("ALTER TABLE members DROP COLUMN last_inbound_at")


def downgrade() -> None:
    op.add_column("members", sa.Column("last_inbound_at", service.models.base.UTCDateTime(timezone=True),
                                       nullable=True))
    op.execute("UPDATE members SET last_inbound_at = (SELECT max(received_at) FROM inbound_messages"
               " WHERE inbound_messages.member_id = members.id)")
    op.drop_index("ix_inbound_messages_member_received", table_name="inbound_messages")
    op.create_index("ix_inbound_messages_member_id", "inbound_messages", ["member_id"])
