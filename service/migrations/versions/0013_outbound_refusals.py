"""`outbound_messages.refusals`: the tries of a row that the carrier refused for Hearth's account
or sender (a rotated token), not for the message. `attempts` counts every claim, as every write
of a send names its own; a row's own tries, which decide when a transient failure is final, are
`attempts - refusals`, so a message that waited hours for a fixed account still has its tries.

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
        batch.add_column(sa.Column("refusals", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("refusals")
