"""The `hearth` command line: a Flask CLI group over the app factory."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo


def register_cli(app: Flask) -> None:
    """Attach Hearth's command groups to the app."""
    from . import db_commands, dev, directory, flows_commands, simulate

    for module in (db_commands, directory, flows_commands, simulate, dev):
        module.register(app)


def _create_app(*_args):
    from service import create_app

    from sqlalchemy.exc import ArgumentError

    try:
        # Only `hearth db upgrade` and `hearth dev` make a SQLite database, as they migrate it
        # (`migrations.upgrade` has an engine of its own); any other command names a file not there.
        return create_app(overrides={"HEARTH_MAKE_DATABASE": False})
    except ValueError as exc:  # a setting in the environment that cannot be used
        raise click.ClickException(str(exc)) from None
    except ArgumentError as exc:  # DATABASE_URL is not a URL SQLAlchemy can use
        raise click.ClickException(f"DATABASE_URL cannot be used: {exc}") from None


class HearthGroup(FlaskGroup):
    """Flask's command group without its options for choosing another app, an env file or debug
    mode: `hearth` always runs Hearth's app factory, configured from the environment."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.params = [param for param in self.params if param.name not in ("env_file", "app", "debug")]

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, for `hearth --help`; a setting that stops the app being built is said in
        one line (Flask's own group would print a traceback), and the help lists no commands."""
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except click.ClickException as exc:
            click.secho(f"Error: {exc.format_message()}\n", err=True, fg="red")
            return []
        return super().list_commands(ctx)


@click.group(cls=HearthGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Hearth: SMS and voice check-ins for therapeutic communities."""
