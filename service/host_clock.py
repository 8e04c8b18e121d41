"""Whether this host's clock agrees with the database's and Redis's, checked as a worker or the
clock starts, and again every RECHECK_SECONDS while it runs (`Watch`).

A send's claim is a time one host writes and another compares with its own clock: a claim older
than the lease (`HEARTH_SEND_LEASE`) is taken for a dead worker's. A host whose clock is off by
the lease takes live claims, and the message goes twice; the send rate limit's window, kept in
Redis, is counted in each worker's own time; timers and schedules fire early or late. A clock
can go wrong after the start too (a virtual machine resumed, NTP stopped or stepping the time).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Off by more than this from either, a start says so in the log.
WARN_SECONDS = 2.0
# How often a running worker or clock looks again: two round trips a minute.
RECHECK_SECONDS = 60.0


def offsets(app: Flask) -> tuple[float | None, float | None]:
    """Seconds this host's clock is ahead of PostgreSQL's and of Redis's (behind: negative); None
    where it is not known (SQLite is this host's own clock; a server that does not answer)."""
    database = redis = None
    engine = app.extensions["hearth_db"].engine
    if engine.dialect.name == "postgresql":
        try:
            with engine.connect() as conn:
                before = time.time()
                theirs = conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar()
                database = (before + time.time()) / 2 - float(theirs)
        except SQLAlchemyError:
            pass
    try:
        before = time.time()
        seconds, micros = app.extensions["hearth_redis"].time()
        redis = (before + time.time()) / 2 - (seconds + micros / 1e6)
    except RedisError:
        pass
    return database, redis


def verdict(found: tuple[float | None, float | None], limit: float) -> str | None:
    """'refuse' when this host is off by more than `limit` from both the database and Redis, the
    same way (it is this host that is wrong, not one of them); 'warn' when off by more than
    WARN_SECONDS from either; else None."""
    known = [offset for offset in found if offset is not None]
    if len(known) == 2 and all(abs(offset) > limit for offset in known) and (known[0] > 0) == (known[1] > 0):
        return "refuse"
    if any(abs(offset) > WARN_SECONDS for offset in known):
        return "warn"
    return None


def check(app: Flask, process: str, *, running: bool = False, warn: bool = True) -> str | None:
    """Stop a worker or the clock whose host's time is off by more than half the lease (status 1,
    one line), as it starts or, `running`, later; log one off by more than WARN_SECONDS (if `warn`).
    Returns the verdict it did not stop on."""
    found = offsets(app)
    limit = app.config["HEARTH"].send_lease / 2
    said = ", ".join(f"{abs(offset):.1f} s {'ahead of' if offset > 0 else 'behind'} {name}'s"
                     for name, offset in zip(("the database", "Redis"), found) if offset is not None)
    judged = verdict(found, limit)
    if judged == "refuse":
        sys.stderr.write(f"hearth {process}: {'stops' if running else 'cannot start'}: this host's clock is {said};"
                         f" claims on messages would be taken from live workers (more than {limit:g} s, half"
                         " HEARTH_SEND_LEASE): set its time right (NTP)\n")
        raise SystemExit(1)
    if judged == "warn" and warn:
        log.warning("this host's clock is %s: keep every host's time in step (NTP)", said)
    return judged


class Watch:
    """`check` again, for a worker or the clock that has started, once RECHECK_SECONDS have gone by
    (on this host's monotonic clock, which no change of its time moves) since the last look; the
    warning is logged when the clock goes off, not at every look while it stays so."""

    def __init__(self, app: Flask, process: str, every: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.app, self.process, self.monotonic = app, process, monotonic
        self.every = RECHECK_SECONDS if every is None else every
        self.due = monotonic() + self.every
        self.warned = False

    def __call__(self) -> None:
        """Look, if it is time to: returns, or stops the process as a start would have been refused."""
        at = self.monotonic()
        if at < self.due:
            return
        self.due = at + self.every
        self.warned = check(self.app, self.process, running=True, warn=not self.warned) == "warn"
