"""Fixtures for the flow engine tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parents[2], HERE):  # the repo root (not installed) and the testkit
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from flows import load_registry  # noqa: E402
from flows_testkit import make_context  # noqa: E402


@pytest.fixture
def ctx():
    """A fresh test context."""
    return make_context()


@pytest.fixture(scope="session")
def registry():
    """The bundled flows."""
    found, problems = load_registry()
    assert not [p for p in problems if p.is_error], problems
    return found
