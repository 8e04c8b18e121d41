"""`hearth db upgrade`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

db_cli = AppGroup("db", help="The database schema.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations (to the newest by default)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from service.migrations import current, revisions, upgrade

    from .errors import database_reason

    url = current_app.config["HEARTH"].database_url
    try:
        upgrade(url, revision)
        now_at = current(url)
    except CommandError as exc:  # a revision that does not exist, say, or the database's is not one of ours
        newer = newer_than_this_code()
        if newer is None:
            raise click.ClickException(f"cannot upgrade to {revision!r}: {exc}") from None
        click.echo(f"Database is at {newer}, newer than this code's newest migration ({revisions()[-1]}):"
                   " nothing to do.")
        return
    except DBAPIError as exc:
        raise click.ClickException(f"cannot upgrade the database: {database_reason(exc)}") from None
    newest = revisions()[-1]
    click.echo(f"Database is at {now_at}" + (" (the newest)." if now_at == newest else "."))
    if revision in revisions() and revision != now_at:
        # Upgrading never goes back: a database past the revision asked for stays where it is.
        click.echo(f"It was past {revision} already; `hearth db upgrade` does not go back.")


def newer_than_this_code() -> str | None:
    """The revision of a database migrated by a newer Hearth than this code (a release rolled back
    after its migrations ran), which this code runs on and leaves as it is; None when it is at one
    of this code's revisions or cannot be read. One at a revision that is not Hearth's (another
    application's database) is refused in words, not in Alembic's "Can't locate revision"."""
    from sqlalchemy.exc import SQLAlchemyError

    from service.health import hearths_tables, schema_version
    from service.migrations import revisions

    try:
        version = schema_version()
    except SQLAlchemyError:
        return None
    if version is None or version in revisions():
        return None
    if not hearths_tables():
        raise click.ClickException(f"the database is at {version}, a revision that is not Hearth's"
                                   " (is DATABASE_URL another application's?)")
    return version


def register(app: Flask) -> None:
    """Add the db group."""
    app.cli.add_command(db_cli)
