"""The clock's log of a task failing tick after tick: in full once, then a line now and then."""

from __future__ import annotations

import logging

from workers.clock import Failures


def test_the_same_failure_is_logged_in_full_once_then_summed_up(caplog):
    caplog.set_level(logging.INFO, logger="hearth.clock")
    down = OSError("connection refused")
    failures = Failures(every=3600)
    for _ in range(300):  # five minutes of ticks with the database down
        failures.failed(0, down)
    failures.failed(1, down)  # another task's failure is its own
    assert [(r.levelname, bool(r.exc_info)) for r in caplog.records] == [("ERROR", True), ("ERROR", True)]
    failures.failed(0, ValueError("something else"))
    failures.worked(0)
    failures.worked(0)
    assert [r.getMessage() for r in caplog.records[2:]] == ["clock task failed; trying again next tick",
                                                            "clock task works again"]


def test_a_failure_that_goes_on_is_said_again_after_a_while(caplog):
    caplog.set_level(logging.INFO, logger="hearth.clock")
    failures = Failures(every=0)  # "a while" has always passed
    for _ in range(3):
        failures.failed(0, OSError("connection refused"))
    assert [r.getMessage() for r in caplog.records] == [
        "clock task failed; trying again next tick",
        "clock task still failing, 1 tick(s) since last logged: OSError: connection refused",
        "clock task still failing, 1 tick(s) since last logged: OSError: connection refused"]
