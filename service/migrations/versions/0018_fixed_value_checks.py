"""CHECK constraints on the columns that hold one of a fixed set of values (a member's status and
channel; an outbox row's state, queue, kind, via and encoding; an alert's severity; a timer's
kind): the code writes only those, and now the database refuses any other. And
`ix_alerts_conversation_id`: the webhook looks up whether a conversation a text ended raised an
alert (`converse._raised_an_alert`), which read every alert without it.

A row already holding another value stops the upgrade before anything is changed, naming the
table, the column and the value: the upgrade runs in one transaction, and is rolled back whole.

On SQLite a constraint is added by rebuilding the table (batch mode), and the rebuild drops the
old table. `members` is referred to by other tables' rows, and with foreign keys on, dropping it
would count each of those rows as pointing at nothing. So its rows are set aside first and put
back into the rebuilt table, with the foreign keys checked at the commit
(`defer_foreign_keys`), when every row refers to a member again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-23
"""
from alembic import op
from alembic.util import CommandError
import sqlalchemy as sa

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

CHECKS = {
    "members": {"status": ("active", "paused", "opted_out", "left"), "channel": ("sms", "voice")},
    "outbound_messages": {
        "state": ("pending", "sending", "sent", "failed", "cancelled"),
        "queue": ("crisis", "replies", "bulk"),
        "kind": ("crisis", "alert", "reply", "welcome", "flow", "reminder", "broadcast", "checkin"),
        "via": ("twiml",),
        "encoding": ("GSM-7", "UCS-2"),
    },
    "alerts": {"severity": ("low", "medium", "high")},
    "timers": {"kind": ("reminder", "no_answer", "wait", "expiry")},
}


def one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    _refuse_other_values()
    for table, columns in CHECKS.items():
        def add(batch, table=table, columns=columns) -> None:
            for column, values in columns.items():
                batch.create_check_constraint(op.f(f"ck_{table}_{column}"), one_of(column, values))
        _alter(table, add)
    op.create_index("ix_alerts_conversation_id", "alerts", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_conversation_id", table_name="alerts")
    for table, columns in CHECKS.items():
        def drop(batch, table=table, columns=columns) -> None:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")
        _alter(table, drop)


def _refuse_other_values() -> None:
    """Stop, before any change, when a row holds a value its column's constraint would refuse."""
    bind = op.get_bind()
    found = []
    for table, columns in CHECKS.items():
        for column, values in columns.items():
            rows = bind.execute(sa.text(
                f"SELECT {column}, count(*) FROM {table} WHERE {column} IS NOT NULL AND NOT ({one_of(column, values)})"
                f" GROUP BY {column} ORDER BY {column}")).all()
            found += [f"{table}.{column} holds {value!r} in {count} row(s), not one of {', '.join(values)}"
                      for value, count in rows]
    if found:
        raise CommandError("; ".join(found) + ". Nothing was changed: correct those rows, then upgrade again.")


def _alter(table: str, change) -> None:
    if op.get_bind().dialect.name != "sqlite" or table != "members":
        with op.batch_alter_table(table) as batch:
            change(batch)
        return
    bind = op.get_bind()
    columns = ", ".join(column["name"] for column in sa.inspect(bind).get_columns("members"))
    op.execute("PRAGMA defer_foreign_keys = ON")  # until the commit (SQLite turns it off then)
    # Columns without a type keep each value exactly as it was stored.
    op.execute(f"CREATE TEMP TABLE members_kept ({columns})")
    op.execute(f"INSERT INTO members_kept SELECT {columns} FROM members")
    op.execute("DELETE FROM members")
    with op.batch_alter_table("members", recreate="always") as batch:
        change(batch)
    op.execute(f"INSERT INTO members ({columns}) SELECT {columns} FROM members_kept")
    op.execute("DROP TABLE members_kept")
    dangling = bind.execute(sa.text("PRAGMA foreign_key_check")).first()
    if dangling is not None:
        raise CommandError(f"a row of {dangling[0]} (rowid {dangling[1]}) refers to no {dangling[2]} row")
