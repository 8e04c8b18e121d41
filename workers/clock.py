"""The clock: every tick, sweep the outbox (and, with flows, fire due timers and schedules)."""

from __future__ import annotations

import logging
import signal
import time

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("hearth.clock")
TICK_SECONDS = 1.0


def tick(app) -> dict[str, int]:
    """One pass of everything the clock does; safe to run in several processes at once."""
    from service.database import db
    from service.sweeper import sweep

    with app.app_context():
        done = {"swept": sweep(db.session, app.extensions["hearth_redis"])}
        for task in app.extensions.get("hearth_clock_tasks", []):
            done.update(task(db.session))
        return done


def run(app=None, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until SIGTERM or SIGINT; an unreachable database or Redis is logged and retried."""
    from workers.runtime import worker_app

    app = app or worker_app()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    log.info("clock started")
    while not stopping:
        started = time.monotonic()
        try:
            done = tick(app)
            if any(done.values()):
                log.info("tick: %s", done)
        except (RedisError, SQLAlchemyError) as exc:
            log.warning("tick failed (%s); trying again", exc.__class__.__name__)
        time.sleep(max(0.0, tick_seconds - (time.monotonic() - started)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("hearth").setLevel(logging.INFO)
    run()
