"""GET /healthz: is the database reachable, is Redis."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .database import db, missing_table
from .migrations import revisions

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database (migrated) and Redis answer, 503 naming what is wrong."""
    checks = {"database": database_state(), "redis": "ok"}
    try:
        current_app.extensions["hearth_redis"].ping()
    except RedisError as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503


def database_state() -> str:
    """'ok', or what is wrong: unreachable, not migrated, or migrated less far than this code needs.

    A schema newer than the code is fine: a deployment migrates before new code replaces old.
    """
    try:
        version = schema_version()
        ours = version is None or version in revisions() or hearths_tables()
    except SQLAlchemyError as exc:
        return f"error: {exc.__class__.__name__}"
    if version is None:
        return "error: not migrated (run hearth db upgrade)"
    needed = revision_needed(version)
    if needed is not None:
        return f"error: schema at {version}, this code needs {needed} (run hearth db upgrade)"
    if not ours:
        return f"error: schema at {version}, a revision that is not Hearth's (is DATABASE_URL another application's?)"
    return "ok"


def hearths_tables() -> bool:
    """Whether Hearth's tables are there: a revision this code does not know is a newer Hearth's
    (a deployment migrates before new code replaces old) only if they are."""
    return _probe("SELECT 1 FROM outbound_messages WHERE 1 = 0") is not _MISSING


# What `_probe` answers when the table it reads is not there.
_MISSING = object()


def _probe(sql: str):
    """The first column of the first row `sql` answers (None without rows), or `_MISSING` when its
    table is not there.

    Read outside a transaction: on SQLite every transaction takes the write lock (BEGIN
    IMMEDIATE), and a probe must neither wait behind a writer nor hold up webhooks and workers.
    """
    try:
        with db.engine.connect() as conn:
            return conn.execution_options(isolation_level="AUTOCOMMIT").execute(text(sql)).scalar()
    except DBAPIError as exc:
        if exc.connection_invalidated or not missing_table(exc):
            raise
        return _MISSING


def revision_needed(version: str | None) -> str | None:
    """The revision this code needs, when the schema is at an older one of its migrations; None
    when it is at the newest, or newer (a deployment migrates before new code replaces old)."""
    known = revisions()
    return known[-1] if version in known[:-1] else None


def schema_version() -> str | None:
    """The revision the database's schema is at; None when it is not migrated at all (`_probe`)."""
    version = _probe("SELECT version_num FROM alembic_version")
    return None if version is _MISSING else version
