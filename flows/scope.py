"""Scope: the names a flow's templates and branches may refer to."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Params its triggers pass, results it saves, asks it has, languages."""

    params: frozenset[str]
    results: frozenset[str]
    answers: frozenset[str]
    languages: tuple[str, ...]
    default_language: str

    def describe(self, kind: str) -> str:
        """The known names of one kind, for error messages."""
        names = sorted(getattr(self, kind))
        return ", ".join(names) if names else "none"
