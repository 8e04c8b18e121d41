"""The community texts Hearth wrote by default name the community's crisis line as `{crisis}`, not
Samaritans by name: a community that changes its crisis contacts changes every text naming it.
Only texts still exactly as Hearth wrote them are changed; a community's own words stay its own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# (column, the default before, the default after): frozen here as they were on this date.
DEFAULTS = [
    ("help_text",
     "{community} check-ins. Reply MENU for what you can text, PAUSE 7 for a break, STOP to stop. Need to talk"
     " now? Samaritans 116 123 (free, 24/7).",
     "{community} check-ins. Reply MENU for what you can text, PAUSE 7 for a break, STOP to stop. Need to talk"
     " now? {crisis}."),
    ("welcome_text",
     "Welcome to {community} check-ins. We will text you now and then to ask how you are. Reply HELP for help or"
     " STOP to stop. Samaritans 116 123 (free, 24/7).",
     "Welcome to {community} check-ins. We'll text now and then to ask how you are. Reply HELP for help or STOP"
     " to stop. {crisis}."),
    ("unknown_reply",
     "Sorry, this service does not know your number. If you need support, call Samaritans on 116 123.",
     "Sorry, this service does not know your number. If you need support: {crisis}."),
]


def _swap(pairs) -> None:
    communities = sa.table("communities", *(sa.column(column, sa.Text) for column, _, _ in DEFAULTS))
    for column, old, new in pairs:
        op.execute(communities.update().where(communities.c[column] == old).values({column: new}))


def upgrade() -> None:
    _swap(DEFAULTS)


def downgrade() -> None:
    _swap((column, new, old) for column, old, new in DEFAULTS)
