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
    zone = ZoneInfo(tz)
    after = as_utc(after)
    today = after.astimezone(zone).date()
    best: datetime | None = None
    for schedule in _schedules(flow_or_trigger):
        for offset in range(-1, 9):
            day = today + timedelta(days=offset)
            if day.weekday() not in schedule.days:
                continue
            for at in schedule.times:
                moment = local_to_utc(day, at, zone)
                if moment > after and (best is None or moment < best):
                    best = moment
    return best
