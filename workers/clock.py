"""The clock: every tick, sweep the outbox (on a thread of its own), and end pauses, fire due timers and
start scheduled runs."""

from __future__ import annotations

import logging
import signal
import threading
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
    """One pass of everything the clock does (the sweep, then the flows' tasks); safe to run in
    several processes at once."""
    return _run(app, [_sweep, *app.extensions.get("hearth_clock_tasks", [])], failures or Failures(every=0.0))


def _sweep(session) -> dict[str, int]:
    from flask import current_app

    from service.sweeper import sweep

    return {"swept": sweep(session, current_app.extensions["hearth_redis"])}


def _run(app, tasks, failures: Failures) -> dict[str, int]:
    """Each task once, on its own: Redis being down must not stop timers, which need only the database."""
    from service.database import db

    done: dict[str, int] = {}
    for number, task in enumerate(tasks):
        with app.app_context():
            try:
                done.update(task(db.session))
            except Exception as exc:  # noqa: BLE001 - logged, and tried again next tick
                _roll_back(db.session)
                failures.failed(number, exc)
            else:
                failures.worked(number)
    return done


def _roll_back(session) -> None:
    """End a failed task's transaction. The rollback fails in its turn when the connection has gone
    since the task's last statement (the database restarted as the task waited for Redis): the pool
    replaces that connection, and the error must not leave the tick, which would end the sweeper's
    thread for good, or the clock."""
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - the task's own failure is the one logged
        log.warning("clock task: its transaction's connection was gone when it was rolled back")


def run(app=None, tick_seconds: float = TICK_SECONDS) -> None:
    """Tick until SIGTERM or SIGINT; a failing task is logged and tried again next tick."""
    from service import app_for, host_clock

    app = app or app_for("clock")
    host_clock.check(app, "clock")
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    log.info("clock started")
    _say_if_not_ready(app)
    serve(app, stopping, tick_seconds)


def serve(app, stopping: list, tick_seconds: float = TICK_SECONDS) -> None:
    """Until `stopping` holds anything: the sweep every tick on a thread of its own, and the flows'
    tasks (pauses, timers, scheduled runs) every tick on this one. A scheduled run over a large
    community can take minutes; the rows whose jobs were lost meanwhile, or whose jobs left them
    to wait for an earlier message, must not wait for it to end."""
    from service.host_clock import Watch

    sweeping = threading.Thread(target=_every, args=(app, [_sweep], stopping, tick_seconds), name="sweeper",
                                daemon=True)
    sweeping.start()
    try:
        _every(app, app.extensions.get("hearth_clock_tasks", []), stopping, tick_seconds, Watch(app, "clock"))
    finally:
        stopping.append(True)  # the sweeper too, when this host's clock has gone off
        sweeping.join(timeout=30)


def _every(app, tasks, stopping: list, tick_seconds: float, watch=None) -> None:
    """Run `tasks` every tick until `stopping`; first, at each tick, `watch` (`host_clock.Watch`):
    a host clock gone off since the start stops the clock as its start would have."""
    failures = Failures()
    while not stopping:
        if watch is not None:
            watch()
        started = time.monotonic()
        done = _run(app, tasks, failures)
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
