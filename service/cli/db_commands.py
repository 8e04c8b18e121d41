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
    except CommandError as exc:  # a revision that does not exist, say
        raise click.ClickException(f"cannot upgrade to {revision!r}: {exc}") from None
    except DBAPIError as exc:
        raise click.ClickException(f"cannot upgrade the database: {database_reason(exc)}") from None
    newest = revisions()[-1]
    click.echo(f"Database is at {now_at}" + (" (the newest)." if now_at == newest else "."))
    if revision in revisions() and revision != now_at:
        # Upgrading never goes back: a database past the revision asked for stays where it is.
        click.echo(f"It was past {revision} already; `hearth db upgrade` does not go back.")


def register(app: Flask) -> None:
    """Add the db group."""
    app.cli.add_command(db_cli)
