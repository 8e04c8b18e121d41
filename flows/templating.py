"""Message templates: Jinja2 in a sandbox, checked when a flow loads.

Loading only parses templates (compiling costs about 1 ms each); they are
compiled on first use and cached by source text.
"""
from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

from jinja2 import ChainableUndefined, pass_context
from jinja2.sandbox import SandboxedEnvironment

from flows import clock, defaults
from flows.answers import read_number
from flows.exceptions import TemplateFailure
from flows.sandbox import COUNTED, FlowSandbox, checked_filters, counted

DEFAULT_FORMAT = "%a %-d %b at %H:%M"
_TAG = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
_LOCAL_FORMAT = re.compile(r"""\|\s*local\(\s*(['"])(.*?)\1""")


def is_template(text: str) -> bool:
    """True when `text` holds Jinja syntax (plain text skips Jinja entirely)."""
    return "{{" in text or "{%" in text or "{#" in text


def _zone_of(context) -> str | None:
    """The community's timezone: a time written without an offset is its local time."""
    return (context.get("community") or {}).get("timezone")


@pass_context
def _local(context, value, fmt: str = DEFAULT_FORMAT) -> str:
    moment = clock.to_datetime(value, _zone_of(context))
    if moment is None:
        return "" if value is None or isinstance(value, ChainableUndefined) else str(value)
    return clock.format_local(moment, str(fmt), _zone_of(context))


@pass_context
def _add_days(context, value, days=0):
    """`days` later on the community's calendar: the same local time, across a clock change too."""
    moment = clock.to_datetime(value, _zone_of(context))
    if moment is None:
        return None
    zone = clock.zone(_zone_of(context))
    try:
        wall = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=int(days))
    except (TypeError, ValueError, OverflowError):
        return moment
    return clock.as_utc(wall.replace(tzinfo=zone))


@pass_context
def _iso(context, value) -> str:
    moment = clock.to_datetime(value, _zone_of(context))
    return moment.isoformat() if moment else ""


def _number(value, default=None, min=None, max=None):  # noqa: A002 - Jinja keyword names
    found = re.search(r"-?\d{1,9}", str(value)) if value is not None else None
    number = int(found.group(0)) if found else default
    if number is None:
        return None
    if min is not None and number < min:
        number = min
    if max is not None and number > max:
        number = max
    return number


# The first unit a member gave after the keyword: "3 days, away this week" is 3 days.
_UNIT = re.compile(r"(?<![a-z])(days?|d|weeks?|wks?|w|fortnights?)\b", re.IGNORECASE)
_COUNT = re.compile(r"\d{1,4}|[a-z]+", re.IGNORECASE)


def _days(value, default=None, min=None, max=None):  # noqa: A002 - Jinja keyword names
    """A number of days from what a member wrote after a keyword: "7", "3 days", "for 2 weeks",
    "two weeks", "a week", "a fortnight"; kept within bounds as `number` keeps its number."""
    weeks = _UNIT.search(str(value)) if value is not None else None
    if weeks is None or weeks.group(1).lower().startswith("d"):
        return _number(value, default, min, max)
    # How many: the nearest number in the two words before ("2 more weeks", "two weeks"), else one.
    before = _COUNT.findall(str(value)[:weeks.start()])[-2:]
    count = read_number(" ".join(reversed(before)), None, None)
    count = 1 if count is None else count
    return _number(str(count * (14 if weeks.group(1).lower().startswith("f") else 7)), default, min, max)


def _first_name(value) -> str:
    words = str(value or "").split()
    return words[0] if words else ""


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The one sandboxed Jinja environment all flow templates use."""
    env = FlowSandbox(
        undefined=ChainableUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(
        local=_local, add_days=_add_days, iso=_iso, number=_number, days=_days, first_name=_first_name,
        **checked_filters(env.filters), **{COUNTED: counted},
    )
    # Templates see only the documented names: not Jinja's range, dict, lipsum (pages of
    # Latin in a text), cycler, joiner or namespace, which loading would otherwise accept.
    env.globals.clear()
    return env


@lru_cache(maxsize=4096)
def _compiled(source: str):
    return environment().from_string(source)


def render(source: str, variables: dict) -> str:
    """Render `source` over `variables`; raise TemplateFailure if it cannot."""
    if not is_template(source):
        return source
    try:
        # A NUL ("{{ '\\x00' }}", "{{ '%c' % 0 }}") means nothing in a text, and PostgreSQL cannot store one.
        return _compiled(source).render(variables).replace("\x00", "")
    except Exception as exc:  # the sandbox and user data can raise anything
        raise TemplateFailure(f"{type(exc).__name__}: {exc}") from exc


def strip_tags(source: str) -> str:
    """`source` with every {{ }} / {% %} tag removed: the last-resort value of a field that failed."""
    return " ".join(_TAG.sub(" ", source).split())


def literal_parts(source: str) -> str:
    """The text outside any tag: what the author typed character by character."""
    return _TAG.sub("", source)


def sample(source: str) -> str:
    """The literal text with each placeholder counted at a typical length."""

    def _stand_in(match: re.Match) -> str:
        tag = match.group(0)
        if not tag.startswith("{{"):
            return ""
        fmt = _LOCAL_FORMAT.search(tag)
        if fmt:
            return clock.format_local(defaults.SAMPLE_DATETIME, fmt.group(2), "UTC")
        if "| local" in tag or "|local" in tag:
            return clock.format_local(defaults.SAMPLE_DATETIME, DEFAULT_FORMAT, "UTC")
        if "community.contacts" in tag:
            return ". ".join(defaults.EXAMPLE_COMMUNITY["contacts"])  # the UK's four, 183 characters
        if "community.crisis" in tag:
            return defaults.EXAMPLE_COMMUNITY["crisis"]  # the UK's line, 37 characters
        return "x" * defaults.PLACEHOLDER_CHARS

    return _TAG.sub(_stand_in, source)
