"""next_occurrence and previous_occurrence across UK clock changes (Europe/London, 2026)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from flows import next_occurrence, previous_occurrence
from flows.triggers import parse_schedule

UTC = timezone.utc
LONDON = "Europe/London"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("after,expected", [
    (utc(2026, 3, 27, 10, 0), utc(2026, 3, 28, 10, 0)),  # GMT
    (utc(2026, 3, 28, 10, 0), utc(2026, 3, 29, 9, 0)),   # the clocks go forward that night
    (utc(2026, 3, 29, 9, 0), utc(2026, 3, 30, 9, 0)),    # strictly after
    (utc(2026, 10, 24, 9, 0), utc(2026, 10, 25, 10, 0)),  # the clocks go back that night
    (utc(2026, 10, 25, 9, 59), utc(2026, 10, 25, 10, 0)),
])
def test_daily_ten_stays_ten_local_across_dst(after, expected):
    assert next_occurrence({"every": "day", "at": "10:00"}, after, LONDON) == expected


def test_a_skipped_local_time_moves_to_the_first_valid_time():
    # 01:30 does not exist in London on 2026-03-29: 01:00 GMT jumps to 02:00 BST.
    schedule = parse_schedule({"every": "day", "at": "01:30"})
    assert next_occurrence(schedule, utc(2026, 3, 28, 12), LONDON) == utc(2026, 3, 29, 1, 0)
    assert next_occurrence(schedule, utc(2026, 3, 29, 1, 0), LONDON) == utc(2026, 3, 30, 0, 30)


def test_an_ambiguous_local_time_takes_the_first():
    # 01:30 happens twice in London on 2026-10-25; the first is BST (00:30 UTC).
    schedule = {"every": "day", "at": "01:30"}
    assert next_occurrence(schedule, utc(2026, 10, 24, 12), LONDON) == utc(2026, 10, 25, 0, 30)
    assert next_occurrence(schedule, utc(2026, 10, 25, 0, 30), LONDON) == utc(2026, 10, 26, 1, 30)


def test_weekdays_and_several_times():
    schedule = {"every": ["mon", "thu"], "at": ["09:00", "18:30"]}
    monday = utc(2026, 3, 2, 12)  # Monday noon GMT
    assert next_occurrence(schedule, monday, LONDON) == utc(2026, 3, 2, 18, 30)
    assert next_occurrence(schedule, utc(2026, 3, 2, 18, 30), LONDON) == utc(2026, 3, 5, 9, 0)
    weekend = {"every": "weekend", "at": "11:00"}
    assert next_occurrence(weekend, monday, LONDON) == utc(2026, 3, 7, 11, 0)


def test_other_zones_and_naive_input():
    schedule = {"every": "day", "at": "10:00"}
    assert next_occurrence(schedule, datetime(2026, 1, 1, 12), "America/New_York") == utc(2026, 1, 1, 15)


def test_flows_and_flows_without_schedules(registry):
    checkin = registry.get("checkin")
    assert next_occurrence(checkin, utc(2026, 6, 1, 12), LONDON) == utc(2026, 6, 2, 9, 0)
    assert next_occurrence(registry.get("help"), utc(2026, 6, 1), LONDON) is None


@pytest.mark.parametrize("schedule, before, expected", [
    ({"every": "weekday", "at": "10:00"}, utc(2026, 11, 30, 10, 0), utc(2026, 11, 27, 10, 0)),  # Mon: Friday's
    ({"every": "day", "at": ["08:00", "12:00"]}, utc(2026, 11, 23, 12, 0), utc(2026, 11, 23, 8, 0)),
    ({"every": "day", "at": "10:00"}, utc(2026, 3, 30, 9, 0), utc(2026, 3, 29, 9, 0)),  # strictly before, in BST
    ({"every": ["mon"], "at": "10:00"}, utc(2026, 11, 30, 10, 0), utc(2026, 11, 23, 10, 0)),  # a week back
])
def test_previous_occurrence(schedule, before, expected):
    assert previous_occurrence(parse_schedule(schedule), before, LONDON) == expected
