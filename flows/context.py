"""Context and Outcome: what the host hands the engine and gets back."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable


@dataclass(frozen=True)
class Context:
    """The member, their community, the time and an id source for one call."""

    member: dict
    community: dict
    now: datetime
    new_id: Callable[[], str]
    meeting: dict | None = None


@dataclass(frozen=True)
class Outcome:
    """The session state to store (None once ended) and the events to act on."""

    state: dict | None
    events: list = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """True when the session is over."""
        return self.state is None
