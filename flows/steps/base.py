"""StepType, the transitions a step returns, and the catalogue of step types."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

if TYPE_CHECKING:
    from flows.flow import Step
    from flows.run import Run
    from flows.scope import Scope

# Ids and names are stored beside what the service writes of them ("flow:<id>", a result's name):
# 40 characters is room for any name a person would read, and fits the columns that hold them.
_LOWER = "lower-case letters, digits and _, starting with a letter, at most 40"
STEP_ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 40, "description": _LOWER}
NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 40, "description": _LOWER}
MESSAGE = {"$ref": "#/$defs/message"}
TEMPLATE = {"type": "string", "description": "a Jinja2 template"}
DURATION = {"$ref": "#/$defs/duration"}


@dataclass(frozen=True)
class Go:
    """Move on: to `target`, else the step's `next`, else the following step."""

    target: str | None = None


@dataclass(frozen=True)
class Wait:
    """Stop here until a message or a timer."""


@dataclass(frozen=True)
class Finish:
    """End the session with `reason`."""

    reason: str = "completed"


WAIT = Wait()
Transition = Go | Wait | Finish


@dataclass(frozen=True)
class Finding:
    """A step-level validation finding; `path` is relative to the step."""

    path: tuple
    message: str
    severity: str = "error"
    suggestion: str | None = None


class StepType:
    """How one type of step is described, checked and run."""

    name: ClassVar[str] = ""
    properties: ClassVar[dict] = {}
    defs: ClassVar[dict] = {}
    required: ClassVar[tuple[str, ...]] = ()
    waits: ClassVar[bool] = False
    ends: ClassVar[bool] = False

    def prepare(self, config: Mapping) -> Any:
        """Data worth computing once at load time (e.g. a word index)."""
        return None

    def routes(self, config: Mapping) -> list[tuple[tuple, str]]:
        """(path, target step id) for each route written in the step."""
        target = config.get("next")
        return [(("next",), target)] if isinstance(target, str) else []

    def falls_through(self, config: Mapping) -> bool:
        """True when, with no route taken, the step goes on to the one below it."""
        return not self.ends and "next" not in config

    def texts(self, config: Mapping) -> list[tuple[tuple, str]]:
        """(path, role) of each template: role is 'sms', 'speech' or 'template'."""
        return []

    def check(self, config: Mapping, scope: Scope) -> list[Finding]:
        """Checks particular to this step type."""
        return []

    def enter(self, step: Step, run: Run) -> Transition:
        """Run the step as the session arrives at it."""
        raise NotImplementedError

    def receive(self, step: Step, run: Run, text: str) -> Transition | None:
        """Take a member's message while waiting here; None ignores it."""
        return None

    def timeout(self, step: Step, run: Run, kind: str) -> Transition | None:
        """React to one of this step's timers; None ignores it."""
        return None


STEP_TYPES: dict[str, StepType] = {}


def register(cls: type[StepType]) -> type[StepType]:
    """Class decorator: add a step type to the catalogue under its name."""
    STEP_TYPES[cls.name] = cls()
    return cls
