"""The engine's contract with the host: state, timers, expiry, versions, no crashes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from .flows_testkit import make_context

from flows import (
    Expire, FlowEnded, Message, Outcome, Send, Timeout, WaitUntil, load_flow_text, resume, start,
)
from flows.examples import run_example

ASK = """\
id: t
version: 1
expiry: 2h
expiry_message: "Let's leave it there for today."
triggers: {facilitator: {params: [when]}}
steps:
  - id: q
    type: ask
    text: Reply 1 or 2
    answer: choice
    result: q
    choices: [{value: 1}, {value: 2}]
    next: thanks
    unreadable: {next: done}
    reminder: {after: 30m}
    no_answer: {after: 1h, next: done}
    voice: {say: Press 1 or 2}
  - id: thanks
    type: send
    text: Thanks
  - id: done
    type: end
"""


@pytest.fixture
def flow():
    found, problems = load_flow_text(ASK, "t.yaml")
    assert found is not None, problems
    return found


def test_state_is_json_and_names_flow_version_and_digest(flow, ctx):
    outcome = start(flow, ctx, {"when": datetime(2026, 3, 2, 17, tzinfo=timezone.utc)})
    state = json.loads(json.dumps(outcome.state))
    assert state["flow"] == {"id": "t", "version": 1, "digest": flow.digest}
    assert state["params"] == {"when": "2026-03-02T17:00:00+00:00"}
    assert state["step"] == "q" and state["expires_at"] == "2026-03-02T11:00:00+00:00"
    assert all(json.dumps(e.to_dict()) for e in outcome.events)


def test_start_asks_for_expiry_first(flow, ctx):
    first = start(flow, ctx).events[0]
    assert isinstance(first, WaitUntil) and first.kind == "expiry"
    assert first.at == datetime(2026, 3, 2, 11, tzinfo=timezone.utc)


def test_resume_does_not_change_the_stored_state(flow, ctx):
    state = start(flow, ctx).state
    copy = json.loads(json.dumps(state))
    outcome = resume(flow, state, Message("1"), ctx)
    assert state == copy and outcome.state is None


def test_a_stale_timer_is_ignored(flow, ctx):
    started = start(flow, ctx)
    reminder = next(e.token for e in started.events if isinstance(e, WaitUntil) and e.kind == "reminder")
    answered = resume(flow, started.state, Message("7"), ctx)  # unreadable: asked again, still waiting
    assert reminder in answered.state["timers"]
    reminded = resume(flow, answered.state, Timeout(reminder), ctx)
    assert [e.text for e in reminded.events] == ["Reply 1 or 2"]
    again = resume(flow, reminded.state, Timeout(reminder), ctx)
    assert again == Outcome(reminded.state, []) and again.state is reminded.state


def test_expire_ends_cleanly_with_the_message(flow, ctx):
    state = start(flow, ctx).state
    outcome = resume(flow, state, Expire(), ctx)
    assert [type(e).__name__ for e in outcome.events] == ["Send", "FlowEnded"]
    assert outcome.events[0].text == "Let's leave it there for today."
    assert outcome.events[1] == FlowEnded("expired") and outcome.state is None


def test_the_expiry_timer_works_like_expire(flow, ctx):
    started = start(flow, ctx)
    token = next(e.token for e in started.events if isinstance(e, WaitUntil) and e.kind == "expiry")
    assert resume(flow, started.state, Timeout(token), ctx).events[-1] == FlowEnded("expired")


def test_nothing_to_resume(flow, ctx):
    assert resume(flow, None, Message("hi"), ctx) == Outcome(None, [])


def test_resume_needs_only_the_flow_text_and_the_state(flow, ctx):
    state = json.loads(json.dumps(start(flow, ctx).state))
    again, _ = load_flow_text(flow.source_text)
    assert again.digest == state["flow"]["digest"]
    outcome = resume(again, state, Message("2"), make_context())
    assert [e.text for e in outcome.events if isinstance(e, Send)] == ["Thanks"]


def test_a_changed_flow_without_the_step_ends_the_session(flow, ctx):
    state = start(flow, ctx).state
    changed, _ = load_flow_text(ASK.replace("id: q", "id: question").replace("version: 1", "version: 2"))
    outcome = resume(changed, state, Message("1"), ctx)
    assert outcome.state is None and outcome.events == [FlowEnded("flow_changed")]


def test_the_engine_never_raises_even_with_a_broken_context(flow):
    def broken_ids():
        raise RuntimeError("no ids today")

    ctx = make_context()
    bad = type(ctx)(None, None, "not a time", broken_ids)
    assert start(flow, bad) == Outcome(None, [FlowEnded("error")])
    state = start(flow, ctx).state
    assert resume(flow, state, Message(None), ctx).state is not None  # type: ignore[arg-type]
    assert resume(flow, {"step": 3, "timers": []}, Message("1"), ctx).events[-1].reason in ("error", "flow_changed")
    assert resume(flow, state, object(), ctx) == Outcome(state, [])


def test_keyword_params_are_filled_in_from_the_text(ctx):
    flow, _ = load_flow_text("id: k\nversion: 1\ntriggers: {keywords: [pause]}\nsteps:\n"
                             "  - id: s\n    type: send\n    text: \"[{{ params.keyword }}|{{ params.args }}]\"\n")
    assert start(flow, ctx, {"text": "PAUSE  7 days"}).events[1].text == "[pause|7 days]"


def test_an_example_that_fails_explains_itself(flow):
    example = {"name": "wrong", "conversation": [{"hearth": "Reply 1 or 2"}, {"member": "1"},
                                                 {"hearth": "Thank you"}],
               "results": {"q": 2}, "ended": "completed", "starts": ["x"]}
    result = run_example(flow, example)
    assert not result.ok
    assert '-hearth: "Thank you"' in result.details and '+hearth: "Thanks"' in result.details
    assert "result 'q': expected {'value': 2}" in result.details
    assert "flows started: expected ['x'], got []" in result.details


def test_an_example_timeout_with_nothing_pending_is_reported(flow):
    result = run_example(flow, {"name": "x", "conversation": [{"timeout": "wait"}]})
    assert "no 'wait' timer is pending" in result.details


def test_an_example_at_a_time_that_cannot_be_moved_to_utc_is_reported(flow):
    result = run_example(flow, {"name": "x", "now": "9999-12-31T23:59:59-12:00", "conversation": []})
    assert not result.ok and "is not a time it can run at" in result.details


def test_an_example_time_that_is_not_a_time_is_refused_at_its_line():
    text = ASK + "examples:\n  - name: x\n    now: garbage\n    conversation: []\n"
    flow_, problems = load_flow_text(text, "t.yaml")
    assert flow_ is None
    assert [str(p) for p in problems] == [
        f"t.yaml:{text.count(chr(10)) - 1}: 'now' should be the example's time, like 2026-03-02T09:00:00Z,"
        " not 'garbage'"]


LOOPS_WITH_AN_ALERT = """\
id: worried
version: 1
triggers: {keywords: [worried]}
steps:
  - {id: tell, type: alert, severity: high, summary: Someone needs a call}
  - {id: say, type: send, text: "We have told the team."}
  - {id: hold, type: wait, until: "2020-01-01T00:00:00+00:00", next: tell}
"""


def test_a_runaway_turn_sends_nothing_but_keeps_its_alert_once():
    """A loop through a wait whose time has passed is a loop: its hundred texts are dropped, but
    the alert it raised still reaches the facilitators, once."""
    from flows import RaiseAlert

    flow, problems = load_flow_text(LOOPS_WITH_AN_ALERT, "worried.yaml")
    assert flow is not None, [str(p) for p in problems]
    outcome = start(flow, make_context())
    assert [type(e).__name__ for e in outcome.events] == ["RaiseAlert", "FlowEnded"]
    assert outcome.events[0].summary == "Someone needs a call" and outcome.events[-1].reason == "loop"
    assert not any(isinstance(e, Send) for e in outcome.events) and outcome.state is None
    assert isinstance(outcome.events[0], RaiseAlert)
