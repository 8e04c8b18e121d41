"""Durations written in flow files: "30m", "2h", "1d", "1d12h", "2w"."""
from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_PART = re.compile(r"(\d+)\s*([mhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[mhdw]\s*)+$")
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}
PATTERN = r"^\s*([0-9]+\s*[mhdw]\s*)+$"
# Longer than any session, reminder or wait a community needs, and far inside what a
# date can hold: "99999999999999w" would overflow a datetime when the flow runs.
LONGEST = timedelta(days=366)
_LONGEST_MINUTES = int(LONGEST.total_seconds() // 60)


def _minutes(text: str) -> int | None:
    """The whole minutes `text` adds up to, or None when it is not a duration."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        return None
    total = 0
    for amount, unit in _PART.findall(text):
        # More than nine digits is over LONGEST in any unit; int() refuses very long ones.
        total += (int(amount) if len(amount) <= 9 else _LONGEST_MINUTES + 1) * _MINUTES[unit]
    return total


@lru_cache(maxsize=512)
def parse_duration(text: str) -> timedelta | None:
    """Read a duration such as "2h" or "1d12h"; None unless it is one from 1m to LONGEST."""
    minutes = _minutes(text)
    if minutes is None or not 0 < minutes <= _LONGEST_MINUTES:
        return None
    return timedelta(minutes=minutes)


def duration_problem(text: str) -> str | None:
    """Why `text` cannot be a flow's duration (zero, over LONGEST), or None when it can."""
    minutes = _minutes(text)
    if minutes is None:
        return "must be a duration such as 30m, 2h, 1d or 1d12h"
    if minutes == 0:
        return "must be longer than zero"
    if minutes > _LONGEST_MINUTES:
        return f"must be at most {LONGEST.days} days"
    return None


def format_duration(value: timedelta) -> str:
    """Write a timedelta back in flow-file form (largest whole units)."""
    minutes = int(value.total_seconds() // 60)
    parts = []
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0m"
