"""rerun_if_disconnected: which database errors run the work again, and which reach the caller."""

from __future__ import annotations

import psycopg.errors
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from service.database import rerun_if_disconnected


class Session:
    def __init__(self) -> None:
        self.rollbacks = 0

    def rollback(self) -> None:
        self.rollbacks += 1


def failing(*errors):
    """Work that raises each of `errors` in turn, then answers 'done'; counts its runs."""
    runs = []

    def work():
        runs.append(1)
        if len(runs) <= len(errors):
            raise errors[len(runs) - 1]
        return "done"
    return work, runs


def deadlock():
    return OperationalError("UPDATE members ...", {}, psycopg.errors.DeadlockDetected("deadlock detected\nDETAIL: x"))


def test_a_deadlock_victim_runs_again_once_and_says_so(caplog):
    session = Session()
    work, runs = failing(deadlock())
    assert rerun_if_disconnected(session, work) == "done"
    assert (len(runs), session.rollbacks) == (2, 1)
    assert "running again after a conflict: deadlock detected" in caplog.text


def test_a_second_deadlock_reaches_the_caller():
    work, runs = failing(deadlock(), deadlock())
    with pytest.raises(OperationalError):
        rerun_if_disconnected(Session(), work)
    assert len(runs) == 2


def test_other_errors_are_not_run_again_but_are_reported_to_failed():
    calls = []
    duplicate = IntegrityError("INSERT ...", {}, psycopg.errors.UniqueViolation("duplicate key"))
    work, runs = failing(duplicate)
    with pytest.raises(IntegrityError):
        rerun_if_disconnected(Session(), work, failed=lambda: calls.append(1))
    assert (len(runs), len(calls)) == (1, 1)


def test_with_waits_any_operational_error_runs_again_until_they_run_out():
    down = OperationalError("connect", {}, psycopg.errors.ConnectionTimeout("connection refused"))
    work, runs = failing(down, down)
    assert rerun_if_disconnected(Session(), work, waits=(0.0, 0.0)) == "done"
    work, runs = failing(down, down, down)
    with pytest.raises(OperationalError):
        rerun_if_disconnected(Session(), work, waits=(0.0, 0.0))
    assert len(runs) == 3
