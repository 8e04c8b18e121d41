"""Turning Hearth's own errors into one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from sqlalchemy.exc import DBAPIError

from service.database import db, missing_table
from service.exceptions import HearthError


@contextmanager
def clear_errors(schema: bool = True):
    """Roll back and print `Error: ...` for any HearthError (or unready database) raised inside.

    With `schema`, first refuse a SQLite file that is not there (a mistyped DATABASE_URL), and a
    database whose schema is older than this code's (migrated part of the way): a command would
    fail half-way, on a column it does not have yet.
    """
    if schema:
        _database_is_there()
        _schema_is_current()
    try:
        yield
    except HearthError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    except DBAPIError as exc:
        db.session.rollback()
        hint = f"; is DATABASE_URL ({_shown_url()}) the database you meant? if so, run `hearth db upgrade` first" \
            if missing_table(exc) else ""
        raise click.ClickException(f"the database refused this ({database_reason(exc)}){hint}") from None


def _database_is_there() -> None:
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not Path(url.database).exists():
        raise click.ClickException(f"there is no database at {Path(url.database).resolve()}: is DATABASE_URL"
                                   f" ({_shown_url()}) the one you meant? `hearth db upgrade` makes one there")


def _schema_is_current() -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from service.health import revision_needed, schema_version

    try:
        version = schema_version()
    except SQLAlchemyError:
        return  # unreachable: the command's own first statement says so, with the usual hint
    needed = revision_needed(version)
    if needed is not None:
        raise click.ClickException(f"the database is at {version}, and this code needs {needed}:"
                                   " run `hearth db upgrade` first")


def _shown_url() -> str:
    """The database's URL without its password; a SQLite file by its full path."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=True)


def database_reason(exc: DBAPIError) -> str:
    """The first line of what the database said, or the error's name when it said nothing."""
    lines = str(exc.orig or "").strip().splitlines()
    return lines[0] if lines else type(exc.orig or exc).__name__
