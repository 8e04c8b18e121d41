"""`outbound_messages.cut_offs`: how many times a worker's claim on the row ended mid-send (the
worker killed, its job stopped, its database gone) and another claim took the row over. A row
cut off more than `sending.MAX_CUT_OFFS` times fails rather than go to the carrier once more.
`attempts` cannot tell: it also counts the waits on a refused account, which never fail a message.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("cut_offs", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("cut_offs")
