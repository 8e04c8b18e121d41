"""A community's quiet hours: when a moment falls in them, and when they end."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from service.models import Community

pytestmark = pytest.mark.dbfree
UTC = timezone.utc


def community(start, end, zone="Europe/London") -> Community:
    return Community(name="Oak House", timezone=zone, quiet_start=start, quiet_end=end)


@pytest.mark.parametrize("moment, until", [
    (datetime(2026, 11, 23, 20, 59, tzinfo=UTC), None),
    (datetime(2026, 11, 23, 21, 0, tzinfo=UTC), datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),  # the evening
    (datetime(2026, 11, 24, 3, 0, tzinfo=UTC), datetime(2026, 11, 24, 8, 0, tzinfo=UTC)),  # after midnight
    (datetime(2026, 11, 24, 8, 0, tzinfo=UTC), None),
    (datetime(2026, 6, 10, 20, 30, tzinfo=UTC), datetime(2026, 6, 11, 7, 0, tzinfo=UTC)),  # 21:30 BST to 08:00 BST
    (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),  # the clocks go forward
])
def test_a_window_over_midnight_in_local_time(moment, until):
    assert community(time(21), time(8)).quiet_until(moment) == until


def test_a_window_within_one_day():
    siesta = community(time(13), time(15), "Europe/Madrid")
    assert siesta.quiet_until(datetime(2026, 11, 23, 12, 30, tzinfo=UTC)) == datetime(2026, 11, 23, 14, tzinfo=UTC)
    assert siesta.quiet_until(datetime(2026, 11, 23, 14, 0, tzinfo=UTC)) is None


def test_no_quiet_hours():
    assert community(None, None).quiet_until(datetime(2026, 11, 23, 23, 0, tzinfo=UTC)) is None
