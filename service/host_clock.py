"""Whether this host's clock agrees with the database's and Redis's, checked as a worker or the
clock starts.

A send's claim is a time one host writes and another compares with its own clock: a claim older
than the lease (`HEARTH_SEND_LEASE`) is taken for a dead worker's. A host whose clock is off by
the lease takes live claims, and the message goes twice; timers and schedules fire early or late.
"""

from __future__ import annotations

import logging
import sys
import time

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Off by more than this from either, a start says so in the log.
WARN_SECONDS = 2.0


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


def check(app: Flask, process: str) -> None:
    """Stop a worker or the clock whose host's time is off by more than half the lease (status 1,
    one line); log one off by more than WARN_SECONDS."""
    found = offsets(app)
    limit = app.config["HEARTH"].send_lease / 2
    said = ", ".join(f"{abs(offset):.1f} s {'ahead of' if offset > 0 else 'behind'} {name}'s"
                     for name, offset in zip(("the database", "Redis"), found) if offset is not None)
    judged = verdict(found, limit)
    if judged == "refuse":
        sys.stderr.write(f"hearth {process}: cannot start: this host's clock is {said}; claims on messages would"
                         f" be taken from live workers (more than {limit:g} s, half HEARTH_SEND_LEASE): set its"
                         " time right (NTP)\n")
        raise SystemExit(1)
    if judged == "warn":
        log.warning("this host's clock is %s: keep every host's time in step (NTP)", said)
