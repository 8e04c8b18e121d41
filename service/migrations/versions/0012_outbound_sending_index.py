"""`ix_outbound_sending_to`: the rows being sent, by number (a partial index: only `sending`
rows, a handful at any time). A send, and the sweeper, look in it before taking a row, so that
a row never overtakes an earlier one to the same number that another worker is sending.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sending = sa.text("state = 'sending'")
    op.create_index("ix_outbound_sending_to", "outbound_messages", ["to_number"], postgresql_where=sending,
                    sqlite_where=sending)


def downgrade() -> None:
    op.drop_index("ix_outbound_sending_to", table_name="outbound_messages")
