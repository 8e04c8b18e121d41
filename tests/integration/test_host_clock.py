"""A worker or the clock on a host whose time is off: measured against the real database and Redis."""

from __future__ import annotations

import pytest

from service import host_clock
from tests.conftest import DATABASE


def test_this_hosts_clock_is_measured_against_the_database_and_redis(app):
    database, redis = host_clock.offsets(app)
    assert redis is not None and abs(redis) < 1  # the same machine's clock, read over loopback
    if DATABASE == "sqlite":
        assert database is None  # SQLite's time is this host's own
    else:
        assert database is not None and abs(database) < 1
    host_clock.check(app, "worker")  # in step: it starts


@pytest.mark.parametrize("found, judged", [
    ((0.1, -0.2), None),
    ((45.0, 44.0), "refuse"),  # ahead of both by more than half the lease (30 s): this host is wrong
    ((-45.0, -46.0), "refuse"),
    ((45.0, 0.1), "warn"),  # only the database is off: it is not this host
    ((45.0, -45.0), "warn"),  # the two disagree with each other
    ((None, 45.0), "warn"),  # SQLite: Redis alone does not stop a start
    ((3.0, None), "warn"),
    ((None, None), None),
])
def test_a_start_is_refused_only_when_this_host_is_off_from_both(found, judged):
    assert host_clock.verdict(found, limit=30) == judged


RAN: list[str] = []


def ran() -> None:
    """A job that notes it ran."""
    RAN.append("ran")


def test_a_running_worker_whose_hosts_clock_goes_off_stops_before_its_next_job_and_hands_it_back(
        app, redis, monkeypatch, capsys):
    """The worker started in step; then its host's clock is stepped 45 s on (a virtual machine
    resumed, say). Before its next job it looks again, stops as its start would have, and leaves
    the job at the front of its queue for a worker whose clock is right."""
    import workers.runtime
    from workers.queues import BULK, queue

    monkeypatch.setattr(workers.runtime, "worker_app", lambda: app)
    monkeypatch.setattr(host_clock, "RECHECK_SECONDS", 0.0, raising=False)  # a minute has gone by at every look
    bulk = queue(BULK, redis)
    bulk.enqueue("tests.integration.test_host_clock.ran", job_id="ran")
    worker = workers.runtime.Worker([bulk], connection=redis, serializer=bulk.serializer)
    monkeypatch.setattr(host_clock, "offsets", lambda app_: (45.0, 44.9))
    RAN.clear()
    with pytest.raises(SystemExit) as stopped:
        worker.work(burst=True)
    assert stopped.value.code == 1 and RAN == []
    assert bulk.job_ids == ["ran"] and bulk.intermediate_queue.get_job_ids() == []
    assert ("hearth worker: stops: this host's clock is 45.0 s ahead of the database's, 44.9 s ahead of Redis's"
            in capsys.readouterr().err)


def test_a_running_clock_whose_hosts_clock_goes_off_stops(app, monkeypatch, capsys):
    from workers.clock import serve

    monkeypatch.setattr(host_clock, "RECHECK_SECONDS", 0.0, raising=False)
    monkeypatch.setattr(host_clock, "offsets", lambda app_: (-45.0, -45.2))
    stopping, ticks = [], []

    def task(session):
        ticks.append(1)
        if len(ticks) == 3:
            stopping.append(True)
        return {}

    app.extensions["hearth_clock_tasks"] = [task]
    with pytest.raises(SystemExit):
        serve(app, stopping, tick_seconds=0.01)
    assert ticks == [] and stopping, "a task ran, or the sweeper was left running"
    assert "hearth clock: stops: this host's clock is 45.0 s behind the database's" in capsys.readouterr().err


def test_a_running_process_looks_at_its_clock_once_a_minute_and_warns_as_it_goes_off(app, monkeypatch, caplog):
    """Two round trips a minute at most; a clock a few seconds off is logged when it goes off, not
    at every look while it stays so."""
    found = iter([(0.1, 0.1), (3.0, 3.1), (3.0, 3.1), (0.1, 0.0), (3.0, 3.0)])
    looks = []
    monkeypatch.setattr(host_clock, "offsets", lambda app_: looks.append(1) or next(found))
    at = [1000.0]
    watch = host_clock.Watch(app, "worker", monotonic=lambda: at[0])
    for step in (30, 29, 1, 59, 1, 60, 60, 60):  # seconds between looks: minutes end at 60, 120, ...
        at[0] += step
        watch()
    assert len(looks) == 5
    warned = [r for r in caplog.records if "this host's clock is" in r.getMessage()]
    assert [r.levelname for r in warned] == ["WARNING", "WARNING"]  # at 2 min, then again at 5 min
