"""The clock: every tick, sweep the outbox (and, with flows, fire due timers and schedules)."""

from __future__ import annotations

import logging
import signal
import time


log = logging.getLogger("hearth.clock")
TICK_SECONDS = 1.0
# A task failing the same way tick after tick (the database down, not migrated yet) is logged in
# full once, then as one line this often, until it works again.
REPEAT_EVERY_SECONDS = 60.0


class Failures:
    """What each task's last failure was, so that the same one is not logged every tick."""

    def __init__(self, every: float = REPEAT_EVERY_SECONDS) -> None:
        self.every = every
        self._last: dict[int, tuple[str, float, int]] = {}  # task: (what, logged at, ticks since)

    def failed(self, task: int, exc: Exception) -> None:
        what = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        seen, logged_at, since = self._last.get(task, (None, 0.0, 0))
        at = time.monotonic()
        if what != seen:
            log.exception("clock task failed; trying again next tick")
            self._last[task] = (what, at, 0)
        elif at - logged_at >= self.every:
            log.error("clock task still failing, %d tick(s) since last logged: %s", since + 1, what)
            self._last[task] = (what, at, 0)
        else:
            self._last[task] = (what, logged_at, since + 1)

    def worked(self, task: int) -> None:
        if self._last.pop(task, None) is not None:
            log.info("clock task works again")


def tick(app, failures: Failures | None = None) -> dict[str, int]:
    """One pass of everything the clock does; safe to run in several processes at once."""
    from service.database import db
    from service.sweeper import sweep

    failures = failures or Failures(every=0.0)
    tasks = [lambda session: {"swept": sweep(session, app.extensions["hearth_redis"])},
             *app.extensions.get("hearth_clock_tasks", [])]
    done: dict[str, int] = {}
    for number, task in enumerate(tasks):
        # Each task on its own: Redis being down must not stop timers, which need only the database.
        with app.app_context():
            try:
                done.update(task(db.session))
            except Exception as exc:  # noqa: BLE001 - logged, and tried again next tick
                db.session.rollback()
                failures.failed(number, exc)
            else:
                failures.worked(number)
    return done


def run(app=None, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until SIGTERM or SIGINT; a failing task is logged and tried again next tick."""
    from service import app_for, host_clock

    app = app or app_for("clock")
    host_clock.check(app, "clock")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    log.info("clock started")
    _say_if_not_ready(app)
    failures = Failures()
    while not stopping:
        started = time.monotonic()
        done = tick(app, failures)
        if any(done.values()):
            log.info("tick: %s", done)
        time.sleep(max(0.0, tick_seconds - (time.monotonic() - started)))


def _say_if_not_ready(app) -> None:
    """A clock started before `hearth db upgrade` says so once, in words (it ticks on, and works
    once the schema is there)."""
    from service.health import database_state

    with app.app_context():
        state = database_state()
    if state != "ok":
        log.error("the database is not ready: %s; the clock tries every tick", state.removeprefix("error: "))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("hearth").setLevel(logging.INFO)
    run()
