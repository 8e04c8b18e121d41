"""The audit log's rows cannot be written over on SQLite: an INSERT OR REPLACE (or REPLACE) that
names a row already there deletes it without firing 0006's DELETE trigger (SQLite fires delete
triggers for REPLACE only with recursive_triggers on), and would put another row in its place. A
trigger refuses any insert whose id is taken.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TRIGGER audit_log_append_only_replace BEFORE INSERT ON audit_log"
                   " WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)"
                   " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_append_only_replace")
