"""The audit log cannot be emptied with TRUNCATE on PostgreSQL (0001's trigger refuses UPDATE and
DELETE row by row, which TRUNCATE does not fire), nor through a TRUNCATE ... CASCADE of a table
it refers to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
                   " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
