"""Events: what a step asks the host to do. The engine itself does nothing."""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Event:
    """Base of all events: a `type` name and a JSON-ready `to_dict()`."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict:
        """The event as plain JSON values, with its type."""
        data = {"type": self.type}
        for f in fields(self):  # type: ignore[arg-type]
            data[f.name] = _plain(getattr(self, f.name))
        return data


@dataclass(frozen=True)
class Send(Event):
    """Send `text` to the member; `voice` carries the ask's call script."""

    type: ClassVar[str] = "send"
    text: str
    step: str
    voice: dict | None = None


@dataclass(frozen=True)
class SaveResult(Event):
    """Save a result; a later result with the same name replaces it."""

    type: ClassVar[str] = "save_result"
    name: str
    value: Any
    step: str
    category: str | None = None


@dataclass(frozen=True)
class SetField(Event):
    """Set (or with None, clear) one of the member's custom fields."""

    type: ClassVar[str] = "set_field"
    field: str
    value: Any


@dataclass(frozen=True)
class RaiseAlert(Event):
    """Tell the facilitators; severity is 'low', 'medium' or 'high'."""

    type: ClassVar[str] = "raise_alert"
    severity: str
    summary: str
    step: str


@dataclass(frozen=True)
class WaitUntil(Event):
    """Call resume(..., Timeout(token)) at `at` (aware UTC)."""

    type: ClassVar[str] = "wait_until"
    at: datetime
    token: str
    kind: str


@dataclass(frozen=True)
class StartFlow(Event):
    """Start flow `flow_id` for this member with `params`."""

    type: ClassVar[str] = "start_flow"
    flow_id: str
    params: dict


@dataclass(frozen=True)
class FlowEnded(Event):
    """The session is over; `reason` says why."""

    type: ClassVar[str] = "flow_ended"
    reason: str


EVENT_TYPES = (Send, SaveResult, SetField, RaiseAlert, WaitUntil, StartFlow, FlowEnded)
