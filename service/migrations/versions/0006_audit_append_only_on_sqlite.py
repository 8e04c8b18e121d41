"""The audit log is append-only on SQLite too: triggers refuse UPDATE and DELETE, as PostgreSQL's
trigger (0001) does.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_append_only_{action.lower()} BEFORE {action} ON audit_log"
                       " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_log_append_only_{action}")
