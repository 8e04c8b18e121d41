"""The clock: every tick, sweep the outbox (and, with flows, fire due timers and schedules)."""

from __future__ import annotations

import logging
import signal
import time


log = logging.getLogger("hearth.clock")
TICK_SECONDS = 1.0


def tick(app) -> dict[str, int]:
    """One pass of everything the clock does; safe to run in several processes at once."""
    from service.database import db
    from service.sweeper import sweep

    tasks = [lambda session: {"swept": sweep(session, app.extensions["hearth_redis"])},
             *app.extensions.get("hearth_clock_tasks", [])]
    done: dict[str, int] = {}
    for task in tasks:
        # Each task on its own: Redis being down must not stop timers, which need only the database.
        with app.app_context():
            try:
                done.update(task(db.session))
            except Exception:
                db.session.rollback()
                log.exception("clock task failed; trying again next tick")
    return done


def run(app=None, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until SIGTERM or SIGINT; a failing task is logged and tried again next tick."""
    from workers.runtime import worker_app

    app = app or worker_app()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    log.info("clock started")
    while not stopping:
        started = time.monotonic()
        done = tick(app)
        if any(done.values()):
            log.info("tick: %s", done)
        time.sleep(max(0.0, tick_seconds - (time.monotonic() - started)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("hearth").setLevel(logging.INFO)
    run()
