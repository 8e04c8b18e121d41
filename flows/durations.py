"""Durations written in flow files: "30m", "2h", "1d", "1d12h", "2w"."""
from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_PART = re.compile(r"(\d+)\s*([mhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[mhdw]\s*)+$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
PATTERN = r"^\s*([0-9]+\s*[mhdw]\s*)+$"


@lru_cache(maxsize=512)
def parse_duration(text: str) -> timedelta | None:
    """Read a duration such as "2h" or "1d12h"; None when it is not one."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        return None
    total = timedelta()
    for amount, unit in _PART.findall(text):
        total += timedelta(**{_UNIT[unit]: int(amount)})
    return total if total > timedelta() else None


def format_duration(value: timedelta) -> str:
    """Write a timedelta back in flow-file form (largest whole units)."""
    minutes = int(value.total_seconds() // 60)
    parts = []
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        count, minutes = divmod(minutes, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0m"
