"""Date and time helpers: ISO parsing, zones, and locale-free formatting."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = timezone.utc
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)
_DIRECTIVE = re.compile(r"%(-?)([a-zA-Z%])")
TIME_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
# A moment as ISO 8601 writes it: a day, a time, and the offset if any (2026-03-02T09:00:00Z).
MOMENT_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
_TIME = re.compile(TIME_PATTERN)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_datetime(value, local: str | None = None) -> datetime | None:
    """A datetime or ISO 8601 text as aware UTC; None when it is neither. One written without an
    offset ("2026-06-08T18:00") is a wall time in the zone `local` names (a community's), as
    `flows start` reads one; without `local`, UTC."""
    if isinstance(value, str) and value.strip():
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None and local:
        value = value.replace(tzinfo=zone(local))
    try:
        return as_utc(value)
    except OverflowError:  # a date at the calendar's ends, moved to UTC
        return None


def minute_of_day(value) -> int | None:
    """Minutes after midnight of a local time "HH:MM" or "H:MM" (00:00 to 23:59); None if not one."""
    if not isinstance(value, str) or not _TIME.match(value.strip()):
        return None
    hour, minute = value.strip().split(":")
    return int(hour) * 60 + int(minute)


def zone(name) -> ZoneInfo | timezone:
    """The IANA zone called `name`, or UTC when there is no such zone."""
    return _zone(name) if isinstance(name, str) and name else UTC


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | timezone:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return UTC


def _part(moment: datetime, flag: str, code: str) -> str:
    if code == "A":
        return DAYS[moment.weekday()]
    if code == "a":
        return DAYS[moment.weekday()][:3]
    if code == "B":
        return MONTHS[moment.month - 1]
    if code == "b":
        return MONTHS[moment.month - 1][:3]
    if code == "p":
        return "am" if moment.hour < 12 else "pm"
    text = moment.strftime("%" + code)
    if flag and code in "dmHIMS" and text.isdigit():
        return str(int(text))
    return text


def format_local(moment: datetime, fmt: str, tz_name) -> str:
    """strftime in `tz_name`, English names, and %-d style unpadded numbers."""
    here = as_utc(moment).astimezone(zone(tz_name))
    return _DIRECTIVE.sub(lambda m: _part(here, m.group(1), m.group(2)), fmt)
