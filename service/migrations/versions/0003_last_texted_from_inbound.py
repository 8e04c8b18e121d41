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
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_messages_member_id"))
        batch_op.create_index("ix_inbound_messages_member_received", ["member_id", "received_at"], unique=False)
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("last_inbound_at")


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_inbound_at", service.models.base.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE members SET last_inbound_at = (SELECT max(received_at) FROM inbound_messages"
               " WHERE inbound_messages.member_id = members.id)")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_member_received")
        batch_op.create_index(batch_op.f("ix_inbound_messages_member_id"), ["member_id"], unique=False)
