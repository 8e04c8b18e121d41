"""Data-driven engine tests: cases/<step_type>.yaml, one file per step type."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from .flows_testkit import make_context

from flows import Expire, Message, Timeout, load_flow_text, resume, start
from flows.events import WaitUntil
from flows.steps import STEP_TYPES
from flows.yaml_source import parse_yaml

CASES = Path(__file__).parent / "cases"


def _all_cases():
    for path in sorted(CASES.glob("*.yaml")):
        for case in parse_yaml(path.read_text(encoding="utf-8"))["cases"]:
            yield pytest.param(path.stem, case, id=f"{path.stem}: {case['name']}")


def test_every_step_type_has_a_case_file():
    have = {p.stem for p in CASES.glob("*.yaml")}
    missing = sorted(set(STEP_TYPES) - have)
    assert not missing, f"step types without cases/<type>.yaml: {missing}"


def test_every_case_file_names_a_step_type():
    assert {p.stem for p in CASES.glob("*.yaml")} <= set(STEP_TYPES)


def _subset(expected, actual) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            _subset(e, a) for e, a in zip(expected, actual))
    return expected == actual


class Harness:
    """Feeds a case's turns to the engine, tracking timers and the clock."""

    def __init__(self, case):
        self.flow, problems = load_flow_text(case["flow"], "case.yaml")
        assert self.flow is not None, [str(p) for p in problems]
        self.now = datetime.fromisoformat(case.get("now", "2026-03-02T09:00:00+00:00"))
        self.ctx = make_context(case.get("member"), case.get("community"), self.now, case.get("meeting"))
        self.timers: dict[str, tuple] = {}
        self.state = None

    def context(self):
        return type(self.ctx)(self.ctx.member, self.ctx.community, self.now, self.ctx.new_id, self.ctx.meeting)

    def token(self, spec):
        if isinstance(spec, dict):
            return spec["token"]
        at, token = max((at, t) for t, (at, kind) in self.timers.items() if kind == spec
                        and t in (self.state or {}).get("timers", {}))
        self.now = max(self.now, at)
        return token

    def turn(self, turn):
        if "start" in turn:
            return start(self.flow, self.context(), turn["start"] or {})
        if "message" in turn:
            return resume(self.flow, self.state, Message(str(turn["message"])), self.context())
        if "timeout" in turn:
            return resume(self.flow, self.state, Timeout(self.token(turn["timeout"])), self.context())
        if "expire" in turn:
            return resume(self.flow, self.state, Expire(), self.context())
        raise AssertionError(f"unknown turn {turn}")


@pytest.mark.parametrize("step_type,case", list(_all_cases()))
def test_case(step_type, case):
    harness = Harness(case)
    assert step_type in {s.type for s in harness.flow.steps.values()}, "the case must use its step type"
    for number, turn in enumerate(case["turns"], start=1):
        before = harness.state
        outcome = harness.turn(turn)
        events = [e.to_dict() for e in outcome.events]
        where = f"turn {number} ({turn})"
        if "events" in turn:
            assert _subset(turn["events"], events), f"{where}: events were\n{json.dumps(events, indent=1)}"
        if turn.get("unchanged"):
            assert events == [] and outcome.state is before, where
        if "state" in turn:
            if turn["state"] is None:
                assert outcome.state is None, f"{where}: state is {outcome.state}"
            else:
                assert _subset(turn["state"], outcome.state), f"{where}: state is {outcome.state}"
        json.dumps(outcome.state)
        for event in outcome.events:
            if isinstance(event, WaitUntil):
                harness.timers[event.token] = (event.at, event.kind)
        harness.state = outcome.state
