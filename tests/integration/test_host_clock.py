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
