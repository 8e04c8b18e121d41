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
     "{community} check-ins. Text MENU for options, PAUSE 7 for a break, STOP to stop. Need to talk now?"
     " {crisis}."),
    ("welcome_text",
     "Welcome to {community} check-ins. We will text you now and then to ask how you are. Reply HELP for help or"
     " STOP to stop. Samaritans 116 123 (free, 24/7).",
     "Welcome to {community} check-ins. We'll text now and then to ask how you are. Reply HELP for help or STOP"
     " to stop. {crisis}."),
    ("unknown_reply",
     "Sorry, this service does not know your number. If you need support, call Samaritans on 116 123.",
     "Sorry, this service does not know your number. If you need support: {crisis}."),
]


COLUMNS = ("help_text", "welcome_text", "opt_out_reply", "opt_in_reply", "unknown_reply")
COMMUNITIES = sa.table("communities", sa.column("id", sa.Integer), sa.column("crisis_contacts", sa.JSON),
                       *(sa.column(column, sa.Text) for column in COLUMNS))


def upgrade() -> None:
    for column, old, new in DEFAULTS:
        op.execute(COMMUNITIES.update().where(COMMUNITIES.c[column] == old).values({column: new}))


def downgrade() -> None:
    """Hearth's defaults back as they were; any other text that says {crisis} (which the code
    before this revision does not fill in) with the community's crisis line written out."""
    for column, old, new in DEFAULTS:
        op.execute(COMMUNITIES.update().where(COMMUNITIES.c[column] == new).values({column: old}))
    conn = op.get_bind()
    for row in conn.execute(sa.select(COMMUNITIES)).mappings().all():
        first = (row["crisis_contacts"] or [{"name": "Samaritans", "how": "call 116 123", "when": "free, 24/7"}])[0]
        line = f"{first['name']}, {first['how']}" + (f" ({first['when']})" if first.get("when") else "")
        written = {column: row[column].replace("{crisis}", line) for column in COLUMNS
                   if row[column] and "{crisis}" in row[column]}
        if written:
            conn.execute(COMMUNITIES.update().where(COMMUNITIES.c.id == row["id"]).values(written))
