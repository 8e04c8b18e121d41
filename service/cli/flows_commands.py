"""`hearth flows validate` and `hearth flows test`: the flow checks, over bundled flows and HEARTH_FLOWS_DIR."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from flows.__main__ import main as flows_main
from flows.registry import BUNDLED_DIR

flows_cli = AppGroup("flows", help="Flow definitions.")


def _paths(paths: tuple[str, ...]) -> list[str]:
    if paths:
        return list(paths)
    extra = current_app.config["HEARTH"].flows_dir
    return [str(BUNDLED_DIR)] + ([extra] if extra else [])


@flows_cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def validate_command(paths: tuple[str, ...]) -> None:
    """Check flow files (default: bundled and HEARTH_FLOWS_DIR); errors name file, line and step."""
    raise SystemExit(flows_main(["validate", *_paths(paths)]))


@flows_cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def test_command(paths: tuple[str, ...]) -> None:
    """Run the example conversations in flow files."""
    raise SystemExit(flows_main(["test", *_paths(paths)]))


def register(app: Flask) -> None:
    """Add the flows group."""
    app.cli.add_command(flows_cli)
