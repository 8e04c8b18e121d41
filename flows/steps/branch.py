"""branch: choose the next step from an answer, result, field or the time.

```yaml
- id: how_low
  type: branch
  on: results.mood
  cases:
    - {in: [1, 2], next: tell_team}
  default: thanks
```
`on` may be `results.NAME` (or `results.NAME.category`), `answers.ASK_ID`,
`member.KEY`, `member.fields.KEY`, `community.KEY`, `params.KEY`,
`meeting.KEY`, or `local.time` / `local.hour` / `local.weekday` /
`local.date` (in the community's timezone). Each case holds one test:
`equals`, `in`, `between` (inclusive; two numbers, or two times HH:MM, where
"22:00".."7:00" wraps past midnight), `contains_any` (words or phrases),
`is_set` or `future`.
"""
from __future__ import annotations

import re
from functools import lru_cache

from flows import defaults
from flows.clock import minute_of_day, to_datetime
from flows.folding import fold, tokens
from flows.steps.base import STEP_ID, Finding, Go, StepType, register

TESTS = ("equals", "in", "between", "contains_any", "is_set", "future")
SCALAR = {"type": ["string", "number", "boolean", "null"]}
_SUBJECT = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_]+){1,2}$")
LOCAL = ("time", "hour", "weekday", "date")


def _number(value):
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(a, b) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return fold("" if a is None else str(a)) == fold("" if b is None else str(b))


def _between(value, low, high) -> bool:
    start, end = minute_of_day(low), minute_of_day(high)
    if start is not None and end is not None:
        # Times compare as minutes of the day ("7:00" is before "22:00"); a later start wraps past midnight.
        now = minute_of_day(value)
        return now is not None and (start <= now <= end if start <= end else now >= start or now <= end)
    v, lo, hi = _number(value), _number(low), _number(high)
    return v is not None and lo is not None and hi is not None and lo <= v <= hi


def between_problem(bounds: list, subject: str) -> str | None:
    """Why a case's `between` cannot be compared: two times HH:MM, or two numbers."""
    timed = subject == "local.time" or any(isinstance(b, str) and ":" in b for b in bounds)
    if timed and any(minute_of_day(b) is None for b in bounds):
        return f"between needs two times from 00:00 to 23:59 (HH:MM or H:MM), not {list(bounds)}"
    if not timed and any(_number(b) is None for b in bounds):
        return f"between needs two numbers or two times HH:MM, not {list(bounds)}"
    return None


def contains_any(value, phrases) -> bool:
    """Whether `value` holds any of the words or phrases, folded, as whole words."""
    pattern = _phrases(phrases if isinstance(phrases, tuple) else tuple(phrases))
    if pattern is None:
        return False
    return pattern.search(" " + " ".join(tokens("" if value is None else str(value), limit=400)) + " ") is not None


@lru_cache(maxsize=256)
def _phrases(phrases: tuple) -> re.Pattern | None:
    """One search for a flow's list (a crisis list is read at every text the menu answers)."""
    folded = sorted({fold(str(p)) for p in phrases} - {""}, key=len, reverse=True)
    return re.compile(" (?:" + "|".join(map(re.escape, folded)) + ") ") if folded else None


def case_matches(case, value, now, local: str | None = None) -> bool:
    """True when `value` passes the one test in `case`."""
    if "equals" in case:
        return _same(value, case["equals"])
    if "in" in case:
        return any(_same(value, option) for option in case["in"])
    if "between" in case:
        return _between(value, *case["between"])
    if "contains_any" in case:
        return contains_any(value, case["contains_any"])
    if "is_set" in case:
        return (value not in (None, "")) == bool(case["is_set"])
    if "future" in case:
        moment = to_datetime(value, local)
        return (moment is not None and moment > now) == bool(case["future"])
    return False


def subject_problem(subject: str, scope) -> str | None:
    """Why `on:` cannot be looked up, or None when it can."""
    if not _SUBJECT.match(subject):
        return f"cannot branch on '{subject}' (write e.g. results.mood or local.hour)"
    base, *rest = subject.split(".")
    name = rest[0]
    known = {
        "results": scope.results, "answers": scope.answers, "params": scope.params,
        "member": defaults.MEMBER_KEYS, "community": defaults.COMMUNITY_KEYS, "local": LOCAL,
    }
    if base == "meeting":
        return None
    if base not in known:
        return f"cannot branch on '{subject}': '{base}' is not something a flow can read"
    if name not in known[base]:
        return f"cannot branch on '{subject}': unknown {base} name '{name}'"
    if len(rest) == 2 and not (
        (base == "results" and rest[1] == "category") or (base, name) == ("member", "fields")
    ):
        return f"cannot branch on '{subject}'"
    return None


@register
class BranchStep(StepType):
    """Go to the first case whose test passes, else `default`."""

    name = "branch"
    properties = {
        "on": {"type": "string"},
        "cases": {"type": "array", "items": {"$ref": "#/$defs/branch_case"}},
        "default": STEP_ID,
    }
    required = ("on", "cases")
    defs = {
        "branch_case": {
            "type": "object",
            "additionalProperties": False,
            "required": ["next"],
            "properties": {
                "equals": SCALAR,
                "in": {"type": "array", "items": SCALAR, "minItems": 1},
                "between": {"type": "array", "items": SCALAR, "minItems": 2, "maxItems": 2},
                "contains_any": {"type": "array", "items": {"type": ["string", "number"]}},
                "is_set": {"type": "boolean"},
                "future": {"type": "boolean"},
                "next": STEP_ID,
            },
        }
    }

    def routes(self, config):
        """Every case's `next`, and `default`."""
        found = [(("cases", i, "next"), c["next"]) for i, c in enumerate(config["cases"])]
        if "default" in config:
            found.append((("default",), config["default"]))
        return found

    def falls_through(self, config):
        """With no `default`, no match goes to the step below."""
        return "default" not in config

    def check(self, config, scope):
        """The subject must exist; each case needs exactly one test."""
        findings = []
        problem = subject_problem(config["on"], scope)
        if problem:
            findings.append(Finding(("on",), problem))
        for i, case in enumerate(config["cases"]):
            tests = [t for t in TESTS if t in case]
            if len(tests) != 1:
                findings.append(Finding(("cases", i), f"a case needs exactly one of: {', '.join(TESTS)}"))
            problem = between_problem(case["between"], config["on"]) if "between" in case else None
            if problem:
                findings.append(Finding(("cases", i, "between"), problem))
        return findings

    def enter(self, step, run):
        """Look the subject up and take the first matching case."""
        value = run.lookup(step.get("on"))
        for case in step.get("cases"):
            if case_matches(case, value, run.now, run.community.get("timezone")):
                return Go(case["next"])
        return Go(step.get("default"))
