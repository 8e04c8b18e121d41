"""Every exception the flows package raises or uses inside itself."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from flows.problem import Problem


class FlowError(Exception):
    """A flow definition was refused; `.problems` says where and why."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"] or self.problems
        if not errors:
            return "flow refused"
        more = len(errors) - 1
        return str(errors[0]) + (f" (and {more} more)" if more else "")


class TemplateFailure(Exception):
    """A message template could not be rendered (the engine falls back)."""


class UnreadableState(Exception):
    """A stored session state the engine cannot make sense of."""
