"""Turning Hearth's own errors into one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

from contextlib import contextmanager

import click

from service.database import db
from service.exceptions import HearthError


@contextmanager
def clear_errors():
    """Roll back and print `Error: ...` for any HearthError raised inside."""
    try:
        yield
    except HearthError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
