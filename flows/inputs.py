"""What can wake a waiting session: a message, a timer, or its expiry."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """Text the member sent (or a key pressed on a call, as text)."""

    text: str


@dataclass(frozen=True)
class Timeout:
    """A WaitUntil firing; `token` is the one the event carried."""

    token: str


@dataclass(frozen=True)
class Expire:
    """The session has run past its flow's expiry."""
