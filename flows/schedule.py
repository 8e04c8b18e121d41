"""next_occurrence(): when a schedule trigger next fires, DST-correct."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from flows.clock import UTC, as_utc
from flows.triggers import Schedule, Triggers, parse_schedule


def _schedules(source: Any) -> Iterable[Schedule]:
    if isinstance(source, Schedule):
        return [source]
    if isinstance(source, Triggers):
        return source.schedules
    if isinstance(source, Mapping):
        return [parse_schedule(source)]
    triggers = getattr(source, "triggers", None)
    return triggers.schedules if isinstance(triggers, Triggers) else []


def _first_valid(lo: datetime, hi: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (lo, hi] on the far side of a clock change."""
    target = hi.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        middle = lo + (hi - lo) / 2
        if middle.astimezone(zone).utcoffset() == target:
            hi = middle
        else:
            lo = middle
    return hi.replace(microsecond=0)


def local_to_utc(day, at: tuple[int, int], zone: ZoneInfo) -> datetime:
    """Local wall time on `day` as UTC: a skipped time moves to the first valid
    one after the gap; a repeated time takes its first occurrence."""
    wall = datetime.combine(day, time(*at))
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _first_valid(min(first, second), max(first, second), zone)


def next_occurrence(flow_or_trigger: Any, after: datetime, tz: str) -> datetime | None:
    """The next UTC time the schedule fires strictly after `after`, in zone `tz`."""
    later = [moment for moment in _around(flow_or_trigger, after, tz, range(-1, 9)) if moment > as_utc(after)]
    return min(later, default=None)


def previous_occurrence(flow_or_trigger: Any, before: datetime, tz: str) -> datetime | None:
    """The last UTC time the schedule fired strictly before `before`, in zone `tz`."""
    earlier = [moment for moment in _around(flow_or_trigger, before, tz, range(-8, 2)) if moment < as_utc(before)]
    return max(earlier, default=None)


def _around(flow_or_trigger: Any, moment: datetime, tz: str, offsets: range) -> list[datetime]:
    """Every time the schedule fires on the local days `offsets` away from `moment`'s, as UTC."""
    zone = ZoneInfo(tz)
    today = as_utc(moment).astimezone(zone).date()
    found = []
    for schedule in _schedules(flow_or_trigger):
        for offset in offsets:
            day = today + timedelta(days=offset)
            if day.weekday() in schedule.days:
                found.extend(local_to_utc(day, at, zone) for at in schedule.times)
    return found
