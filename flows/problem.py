"""Problem: one thing wrong (or worth a look) in a flow file."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """A validation finding that names the file, line and step."""

    file: str
    line: int | None
    step: str | None
    message: str
    severity: str = "error"
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        step = f" step '{self.step}':" if self.step else ""
        return f"{where}:{step} {self.message}"

    @property
    def is_error(self) -> bool:
        """True when this problem makes the flow refused."""
        return self.severity == "error"

    def to_dict(self) -> dict:
        """A JSON-ready form for tools and the CLI."""
        return {
            "file": self.file,
            "line": self.line,
            "step": self.step,
            "message": self.message,
            "severity": self.severity,
            "suggestion": self.suggestion,
        }
