"""`outbound_messages.cut_off`: how many times a worker stopped (killed, its host gone) while it
held the row's claim, counted when another claim takes the row over after its lease. A message
that stops every worker that sends it is failed after `sending.CUT_OFF_LIMIT` such stops rather
than sent again for ever.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("cut_off", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("cut_off")
