"""start() and resume(): run a flow from one wait to the next.

The engine keeps nothing between calls. The host stores `Outcome.state` (plain
JSON) and acts on the events. Nothing a member sends can make it raise: a
broken call ends the session with FlowEnded('error') and logs why.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime

from flows import defaults
from flows.context import Context, Outcome
from flows.events import FlowEnded, RaiseAlert
from flows.inputs import Expire, Message, Timeout
from flows.run import Run
from flows.steps import STEP_TYPES
from flows.steps.base import Finish, Wait
from flows.triggers import keyword_params

log = logging.getLogger("flows")


def _plain(value, depth: int = 0):
    if depth > 20:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):  # a frozen flow's params are read-only mappings
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _advance(run: Run, step, move) -> None:
    flow = run.flow
    for _ in range(defaults.MAX_STEPS_PER_CALL):
        if isinstance(move, Wait):
            run.state["step"] = step.id
            return
        if isinstance(move, Finish):
            run.finish(move.reason)
            return
        target = move.target or step.get("next")
        if target is None:
            kind = STEP_TYPES[step.type]
            after = flow.step_after(step.id) if kind.falls_through(step.config) else None
            target = after.id if after else None
        step = flow.steps.get(target) if target else None
        if step is None:
            run.finish("completed")
            return
        move = STEP_TYPES[step.type].enter(step, run)
    log.error("flow %s: more than %d steps without a wait; the turn is dropped", flow.id, defaults.MAX_STEPS_PER_CALL)
    # As for an error, nothing of a runaway turn (a hundred copies of a text) goes out, but for
    # the alerts it raised: each once, since safety comes first.
    alerts = {(e.severity, e.summary): e for e in run.events if isinstance(e, RaiseAlert)}
    run.events[:] = list(alerts.values())
    run.finish("loop")


def _outcome(run: Run) -> Outcome:
    return Outcome(None if run.ended else run.state, run.events)


def start(flow, ctx: Context, params: dict | None = None) -> Outcome:
    """Begin a session of `flow` for the member in `ctx`."""
    try:
        params = _plain(params) if isinstance(params, dict) else {}
        if isinstance(params.get("text"), str) and "keyword" not in params:
            params = {**keyword_params(params["text"]), **params}
        state = {
            "flow": {"id": flow.id, "version": flow.version, "digest": flow.digest},
            "session": "", "step": None, "tries": 0, "timers": {}, "language": None,
            "params": params, "results": {}, "answers": {},
        }
        run = Run(flow, state, ctx)
        state["session"] = str(ctx.new_id())
        state["language"] = run.language
        state["started_at"] = run.now.isoformat()
        expires = run.now + flow.expiry
        state["expires_at"] = expires.isoformat()
        run.add_timer(expires, "expiry")
        first = flow.first_step
        _advance(run, first, STEP_TYPES[first.type].enter(first, run))
        return _outcome(run)
    except Exception:
        log.exception("flow %s: start failed", getattr(flow, "id", "?"))
        return Outcome(None, [FlowEnded("error")])


def _expire(run: Run) -> None:
    # "No reply needed now" is said only to a question still open: a flow that stopped asking
    # (it only listens, or waits) ends quietly, at night too.
    if run.flow.expiry_message is not None and awaits_answer(run.flow, run.state):
        step = run.flow.steps.get(run.state.get("step")) or run.flow.first_step
        run.send(run.flow.expiry_message, step)
    run.finish("expired")


def _stored_run(flow, state: dict, ctx: Context) -> Run:
    """A run over a copy of a stored session's state, which the run may change freely."""
    return Run(flow, json.loads(json.dumps(state, default=str)), ctx)


def resume(flow, state: dict | None, input, ctx: Context) -> Outcome:
    """Carry a stored session on with a Message, Timeout or Expire."""
    if not isinstance(state, dict):
        return Outcome(None, [])
    try:
        run = _stored_run(flow, state, ctx)
        step = flow.steps.get(run.state.get("step"))
        if isinstance(input, Expire):
            _expire(run)
            return _outcome(run)
        if isinstance(input, Timeout):
            kind = run.state.get("timers", {}).pop(str(input.token), None)
            if kind is None:
                return Outcome(state, [])
            if kind == "expiry":
                _expire(run)
                return _outcome(run)
            move = STEP_TYPES[step.type].timeout(step, run, kind) if step else None
        elif isinstance(input, Message):
            text = input.text if isinstance(input.text, str) else ""
            move = STEP_TYPES[step.type].receive(step, run, text) if step else None
        else:
            move = None
        if move is None and step is None and isinstance(input, (Message, Timeout)):
            run.finish("flow_changed")
            return _outcome(run)
        if move is None:
            return Outcome(state, [])
        _advance(run, step, move)
        return _outcome(run)
    except Exception:
        log.exception("flow %s: resume failed", getattr(flow, "id", "?"))
        return Outcome(None, [FlowEnded("error")])


def awaits_answer(flow, state: dict | None) -> bool:
    """Whether the session stands at a question it asked the member and they have yet to answer:
    not a silent ask that only listens (a vote already cast), nor a wait."""
    step = _standing_at(flow, state)
    return step is not None and step.type == "ask" and step.get("text") is not None


def only_listens(flow, state: dict | None) -> bool:
    """Whether the session stands at a silent ask: it asks nothing, and takes only an answer."""
    step = _standing_at(flow, state)
    return step is not None and step.type == "ask" and step.get("text") is None


def _standing_at(flow, state: dict | None):
    """The step a stored session stands at, or None."""
    return flow.steps.get((state or {}).get("step") or "") if flow is not None else None


def question(flow, state: dict | None, ctx: Context) -> str | None:
    """The question the session stands at (`awaits_answer`), worded for the member now, to ask
    it again when they come back to it; None if it stands at none."""
    if not awaits_answer(flow, state):
        return None
    try:
        run = _stored_run(flow, state, ctx)
        step = flow.steps[state["step"]]
        return run.text(step.get("text"), step).strip()[: defaults.MAX_SEND_CHARS] or None
    except Exception:
        log.exception("flow %s: its question could not be worded again", getattr(flow, "id", "?"))
        return None
