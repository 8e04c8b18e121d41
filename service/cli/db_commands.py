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
    from service.migrations import upgrade

    upgrade(current_app.config["HEARTH"].database_url, revision)
    click.echo(f"Database is at {revision}.")


def register(app: Flask) -> None:
    """Add the db group."""
    app.cli.add_command(db_cli)
