"""Quiet hours whose end falls in the hour the clocks repeat."""

from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from service.models import Community

pytestmark = pytest.mark.dbfree
UTC = timezone.utc


@pytest.mark.parametrize("moment", [
    datetime(2026, 10, 25, 1, 15, tzinfo=UTC),   # 01:15 GMT, the second 01:15 of the night
    datetime(2026, 10, 25, 1, 29, tzinfo=UTC),
])
def test_quiet_hours_never_end_before_the_moment_they_are_asked_about(moment):
    community = Community(name="Oak House", timezone="Europe/London", quiet_start=time(22), quiet_end=time(1, 30))
    until = community.quiet_until(moment)
    assert until is None or until > moment, f"quiet at {moment:%H:%M} UTC 'until' {until:%H:%M} UTC"
