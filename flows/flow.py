"""Flow and Step: a parsed, validated, immutable flow definition."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Mapping

from flows.triggers import Triggers


def freeze(value: Any) -> Any:
    """A read-only copy of parsed YAML: mappings become proxies, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain dict/list copy of frozen data (for params and JSON)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class Step:
    """One step: its id, type, source line, YAML fields and prepared data."""

    id: str
    type: str
    line: int | None
    config: Mapping[str, Any]
    prepared: Any = None

    def get(self, key: str, default: Any = None) -> Any:
        """One of the step's YAML fields."""
        return self.config.get(key, default)


@dataclass(frozen=True, eq=False)
class Flow:
    """A flow definition, checked and ready to run (equal only to itself)."""

    id: str
    version: int
    language: str
    languages: tuple[str, ...]
    expiry: timedelta
    steps: Mapping[str, Step]
    triggers: Triggers
    interrupts: bool
    source_path: str
    source_text: str = field(repr=False)
    digest: str
    examples: tuple = field(default=(), repr=False)
    expiry_message: Any = None
    description: str = ""
    following: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def first_step(self) -> Step:
        """The step a new session enters."""
        return next(iter(self.steps.values()))

    def step_after(self, step_id: str) -> Step | None:
        """The step written after `step_id`, or None when it is the last."""
        after = self.following.get(step_id)
        return self.steps[after] if after is not None else None
