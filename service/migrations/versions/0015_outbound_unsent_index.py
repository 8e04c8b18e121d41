"""`ix_outbound_unsent_to` replaces `ix_outbound_sending_to`: the rows not yet sent (pending or
sending), by number and id. A claim, and the sweeper, look in it for an earlier row to the same
number that must go first: one being sent, or one on the same queue that is due and waits (queued
in another job, or put back for a retry).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    unsent = sa.text("state IN ('pending', 'sending')")
    op.create_index("ix_outbound_unsent_to", "outbound_messages", ["to_number", "id"], postgresql_where=unsent,
                    sqlite_where=unsent)
    op.drop_index("ix_outbound_sending_to", table_name="outbound_messages")


def downgrade() -> None:
    sending = sa.text("state = 'sending'")
    op.create_index("ix_outbound_sending_to", "outbound_messages", ["to_number"], postgresql_where=sending,
                    sqlite_where=sending)
    op.drop_index("ix_outbound_unsent_to", table_name="outbound_messages")
