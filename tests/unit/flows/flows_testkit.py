"""Helpers shared by the flow tests: a fixed clock and a test Context."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

from flows import Context

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MEMBER = {"id": "m1", "name": "Ann", "language": None, "channel": "sms",
          "status": "active", "fields": {}}
COMMUNITY = {"name": "Oak House", "timezone": "Europe/London", "language": "en",
             "help_text": "Call the office."}


def make_context(member=None, community=None, now=NOW, meeting=None) -> Context:
    """A Context with test defaults and ids id-1, id-2, ..."""
    counter = itertools.count(1)
    return Context({**MEMBER, **(member or {})}, {**COMMUNITY, **(community or {})},
                   now, lambda: f"id-{next(counter)}", meeting)


def flow_text(steps: str, head: str = "") -> str:
    """A minimal flow file around some steps (indented two spaces)."""
    return f"id: t\nversion: 1\n{head}steps:\n{steps}"
