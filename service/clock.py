"""The one place Hearth reads the time; tests replace it through the app config."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

Clock = Callable[[], datetime]
# What the clock missed by more than this (it was down) is not done late: a 10:00 check-in at
# 03:00, or a "how are you today?" reminder in the evening, helps nobody.
MISSED_AFTER = timedelta(hours=1)


def missed(due: datetime, at: datetime) -> bool:
    """Whether something due at `due` is, at `at`, more than MISSED_AFTER late."""
    return at - due > MISSED_AFTER


def system_clock() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(timezone.utc)


def now() -> datetime:
    """The app's clock (config `CLOCK`) if there is an app, else the system clock."""
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app.config.get("CLOCK", system_clock)()
    return system_clock()
