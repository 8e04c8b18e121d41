"""Triggers: what starts a flow (keywords, a schedule, staff, the catch-all)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from flows import defaults
from flows.folding import fold, tokens

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_GROUPS = {"day": range(7), "weekday": range(5), "weekend": (5, 6)}


@dataclass(frozen=True)
class Schedule:
    """Fires on `days` (0 = Monday) at each local (hour, minute) in `times`."""

    days: frozenset[int]
    times: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Triggers:
    """Every way a flow can start."""

    keywords: Mapping[str, tuple[str, ...]]
    schedules: tuple[Schedule, ...] = ()
    facilitator: bool = False
    facilitator_params: tuple[str, ...] = ()
    optional_params: frozenset[str] = frozenset()
    catch_all: bool = False

    def all_keywords(self) -> frozenset[str]:
        """Every keyword in every language, folded."""
        return frozenset(w for words in self.keywords.values() for w in words)

    def required_params(self) -> frozenset[str]:
        """The params staff must give when they start it (those not marked optional with a ?)."""
        return frozenset(self.facilitator_params) - self.optional_params

    def params(self) -> frozenset[str]:
        """The params names a session of this flow may be given."""
        names = set(self.facilitator_params)
        if self.keywords or self.catch_all:
            names.update(defaults.KEYWORD_PARAMS)
        return frozenset(names)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_schedule(raw: Mapping) -> Schedule:
    """A Schedule from `{every: day|weekday|weekend|mon|[mon, thu], at: "HH:MM"}`."""
    days: set[int] = set()
    for word in _as_list(raw.get("every", "day")):
        word = str(word).lower()
        days.update(DAY_GROUPS.get(word, [DAY_NAMES.index(word)] if word in DAY_NAMES else []))
    times = []
    for text in _as_list(raw.get("at", [])):
        hour, minute = str(text).split(":")
        times.append((int(hour), int(minute)))
    return Schedule(frozenset(days), tuple(sorted(times)))


def parse_triggers(raw: Mapping | None) -> Triggers:
    """Triggers from the (already schema-checked) `triggers:` mapping."""
    raw = raw or {}
    keywords = raw.get("keywords") or {}
    if not isinstance(keywords, Mapping):
        keywords = {defaults.LANGUAGE: keywords}
    folded = {lang: tuple(fold(str(w)) for w in words) for lang, words in keywords.items()}
    schedules = tuple(parse_schedule(s) for s in _as_list(raw.get("schedule") or []))
    staff = raw.get("facilitator")
    declared = [str(name) for name in staff.get("params", ())] if isinstance(staff, Mapping) else []
    return Triggers(
        keywords=folded,
        schedules=schedules,
        facilitator=bool(staff),
        facilitator_params=tuple(name.rstrip("?") for name in declared),
        optional_params=frozenset(name.rstrip("?") for name in declared if name.endswith("?")),
        catch_all=bool(raw.get("catch_all", False)),
    )


def keyword_params(text: str) -> dict:
    """Params for a flow started by keyword: the text, the keyword and the rest."""
    text = text if isinstance(text, str) else ""
    words = text.split(None, 1)
    keyword = tokens(words[0], limit=1) if words else []
    return {
        "text": text,
        "keyword": keyword[0] if keyword else "",
        "args": words[1].strip() if len(words) > 1 else "",
    }
