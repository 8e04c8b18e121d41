"""What the double has been told to do: injected failures, outcomes, callback settings."""

import threading
from dataclasses import dataclass, fields, replace

from .errors import FAILURE_KINDS

MESSAGE_OUTCOMES = ("delivered", "undelivered", "failed", "sent")
CALL_OUTCOMES = ("completed", "busy", "no-answer", "failed", "canceled")
DEFAULT_ERROR_CODES = {"undelivered": 30003, "failed": 30008}


@dataclass(frozen=True)
class Settings:
    """Double-wide callback behaviour; each field can be changed while running."""

    callbacks: bool = True
    callback_delay: float = 0.0
    out_of_order: bool = False
    duplicate_callbacks: bool = False
    queued_callback: bool = False
    fetch_twiml: bool = True
    # Seconds a create waits, once recorded, before it is answered: a slow carrier. A client killed
    # in that window leaves a message the double took and the client never heard of.
    answer_delay: float = 0.0
    # The Retry-After an injected 429 carries, in whole seconds (Twilio sends 1).
    retry_after: int = 1


@dataclass(frozen=True)
class Outcome:
    """How messages or calls to one number end, with optional per-number overrides."""

    status: str
    error_code: int | None = None
    callback_delay: float | None = None
    out_of_order: bool | None = None
    duplicate_callbacks: bool | None = None

    def settings(self, base: Settings) -> Settings:
        """``base`` with this number's overrides applied."""
        overrides = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name in ("callback_delay", "out_of_order", "duplicate_callbacks")
            and getattr(self, f.name) is not None
        }
        return replace(base, **overrides)


class Behaviour:
    """Thread-safe failure rules, outcomes and settings, consulted per request."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        self._initial = settings
        self.settings = settings
        self._failures: dict[str, list] = {}
        self._outcomes: dict[str, Outcome] = {}

    def reset(self) -> None:
        """Drop every rule and outcome and go back to the settings given at start."""
        with self._lock:
            self._failures.clear()
            self._outcomes.clear()
            self.settings = self._initial

    def configure(self, **changes) -> Settings:
        """Change double-wide settings (callbacks, callback_delay, out_of_order, ...)."""
        with self._lock:
            self.settings = replace(self.settings, **changes)
            return self.settings

    def fail(self, to: str, kind: str, times: int | None = None) -> None:
        """Answer requests to ``to`` with failure ``kind``; ``times=None`` means always."""
        kind = str(kind)
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; use one of {FAILURE_KINDS}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for always")
        with self._lock:
            self._failures[to] = [kind, times]

    def take_failure(self, to: str | None) -> str | None:
        """The failure kind to answer for ``to`` now (using one of its ``times``), or None."""
        if not self._failures:  # the common case, checked without the lock
            return None
        with self._lock:
            rule = self._failures.get(to) or self._failures.get("*")
            if rule is None:
                return None
            kind, left = rule
            if left is not None:
                if left <= 1:
                    self._failures.pop(to if to in self._failures else "*")
                else:
                    rule[1] = left - 1
            return kind

    def outcome(self, to: str, status: str, error_code: int | None = None, **overrides) -> Outcome:
        """Make messages or calls to ``to`` end with ``status`` (``"*"``: every number)."""
        if status not in MESSAGE_OUTCOMES + CALL_OUTCOMES:
            raise ValueError(f"unknown outcome {status!r}")
        if error_code is None:
            error_code = DEFAULT_ERROR_CODES.get(status)
        outcome = Outcome(status, error_code, **overrides)
        with self._lock:
            self._outcomes[to] = outcome
        return outcome

    def outcome_for(self, to: str, default: str) -> Outcome:
        """The outcome set for ``to`` (or ``"*"``), else ``default`` with no overrides."""
        with self._lock:
            found = self._outcomes.get(to) or self._outcomes.get("*")
        return found or Outcome(default)
