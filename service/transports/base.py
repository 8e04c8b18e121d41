"""What every transport gives back, and how a transport is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    """The carrier's answer to one accepted message."""

    sid: str
    status: str
    segments: int


class Transport(Protocol):
    """Sends one SMS, from `from_number` (a community's own number) or else the configured sender;
    raises TransientSendError or PermanentSendError when it cannot."""

    def send(self, to: str, body: str, status_callback: str | None, from_number: str | None = None) -> SendResult: ...


def make_transport(config) -> Transport:
    """The transport the configuration asks for."""
    if config.transport == "twilio":
        from .twilio import TwilioTransport

        return TwilioTransport(config)
    from .console import ConsoleTransport

    return ConsoleTransport()
