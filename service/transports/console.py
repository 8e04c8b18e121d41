"""A transport for local use: prints each message and records it as the Twilio one would."""

from __future__ import annotations

import sys
import uuid
from typing import TextIO

from flows.sms import measure
from .base import SendResult


class ConsoleTransport:
    """Writes `to <- body` to a stream and reports the message delivered."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, to: str, body: str, status_callback: str | None, from_number: str | None = None) -> SendResult:
        """Print the message; the sid looks like Twilio's so rows read the same."""
        stream = self.stream or sys.stdout
        print(f"[sms to {to}{f' from {from_number}' if from_number else ''}] {body}", file=stream, flush=True)
        return SendResult(sid="SM" + uuid.uuid4().hex, status="delivered", segments=measure(body).segments)
