"""Fixtures for the flow engine tests."""
from __future__ import annotations

import pytest

from flows import load_registry

from .flows_testkit import make_context


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
