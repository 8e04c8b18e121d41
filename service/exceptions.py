"""Every exception Hearth's service layer raises on purpose."""

from __future__ import annotations


class HearthError(Exception):
    """Base of Hearth's own errors: a message fit to show the person who caused it."""


class InvalidPhone(HearthError):
    """A phone number that cannot be a real one."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw!r} is not a usable phone number: {reason}")
        self.raw, self.reason = raw, reason


class NotFound(HearthError):
    """A named community, member or facilitator that does not exist."""


class Conflict(HearthError):
    """Something that already exists (a member's phone in the same community, say)."""


class BadRequest(HearthError):
    """A webhook whose form is missing or malformed."""


class TransientSendError(HearthError):
    """A send that may work if tried again later (429, 5xx, a network error)."""

    def __init__(self, message: str, code: int | None = None, *, maybe_taken: bool = False) -> None:
        super().__init__(message)
        # The request reached the carrier but no answer came back: it may have taken the message.
        self.code, self.maybe_taken = code, maybe_taken


class RateLimitedSendError(TransientSendError):
    """The carrier asked Hearth to slow down (429, 20429), for `retry_after` seconds."""

    def __init__(self, message: str, code: int | None = None, *, retry_after: float) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class SetupSendError(TransientSendError):
    """The carrier refused Hearth's account or sender, not the message (wrong credentials, a From
    that is not the account's): every message would fail alike until the settings are fixed."""


class PermanentSendError(HearthError):
    """A send that will never work as it is (bad number, opted out at the carrier, ...)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
