"""Quiet hours that end in the hour the clocks repeat: a welcome waits for their real end."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

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


def test_a_check_in_two_hours_after_its_time_is_set_aside(app, session, member, double, clock):
    """The clock ran the 10:00 check-in 55 minutes late (allowed); the workers then took 55 minutes
    more: by its slot it is nearly two hours late, and is set aside, not asked at 11:50."""
    from sqlalchemy import select

    from service.models import OutboundMessage
    from service.schedules import run_schedules

    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 55, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}
    row = session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "checkin"))
    assert row.due_at == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # its slot
    clock.now = datetime(2026, 11, 23, 11, 50, tzinfo=timezone.utc)
    assert send(app, session, row) == "cancelled"


def test_a_reminder_is_late_by_its_timers_time_not_by_when_the_clock_fired_it(app, session, member, double, clock):
    from sqlalchemy import select

    from service.models import OutboundMessage, Timer
    from service.schedules import run_schedules
    from service.timers import fire_due_timers

    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}  # the check-in, with its reminder 3 h later
    reminder = session.scalar(select(Timer).where(Timer.kind == "reminder"))
    clock.now = reminder.due_at + timedelta(minutes=50)  # the clock fires it 50 minutes late: still in time
    fire_due_timers(session)
    row = session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "reminder"))
    assert row.due_at == reminder.due_at
    clock.now = reminder.due_at + timedelta(minutes=70)  # and the workers take 20 minutes more
    assert send(app, session, row) == "cancelled"
