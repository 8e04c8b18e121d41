"""`inbound_messages.handled_as` holds "flow:" and a flow's id (up to 40 characters): 64 wide.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite keeps a VARCHAR's length as a note only; rebuilding the table to change it would gain nothing.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("inbound_messages", "handled_as", type_=sa.String(64), existing_type=sa.String(32),
                        existing_nullable=False)


def downgrade() -> None:
    # A text that a flow with a long id handled says so in more than 32 characters: cut to fit.
    op.execute("UPDATE inbound_messages SET handled_as = substr(handled_as, 1, 32) WHERE length(handled_as) > 32")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("inbound_messages", "handled_as", type_=sa.String(32), existing_type=sa.String(64),
                        existing_nullable=False)
