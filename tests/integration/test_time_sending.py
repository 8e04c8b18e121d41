"""Quiet hours that end in the hour the clocks repeat: a welcome waits for their real end."""

from __future__ import annotations

from datetime import datetime, time, timezone

from service.outbox import queue_message
from tests.integration.test_sending import app, double, fresh, send  # noqa: F401  (fixtures)


def test_a_welcome_in_the_repeated_hour_waits_for_quiet_hours_to_end(app, session, member, double, clock):
    member.community.quiet_start, member.community.quiet_end = time(22), time(1, 30)
    session.commit()
    clock.now = datetime(2026, 10, 25, 1, 10, tzinfo=timezone.utc)  # 01:10 GMT: quiet until 01:30 GMT
    row = queue_message(session, key="welcome:x", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.commit()
    states = [send(app, session, row) for _ in range(5)]  # the sweeper would hand it over every tick
    got = fresh(session, row)
    assert got.due_at == datetime(2026, 10, 25, 1, 30, tzinfo=timezone.utc)  # 01:30 GMT, not the first 01:30 (BST)
    assert (set(states), got.attempts) == ({"skipped"}, 0)  # not due: never claimed
