"""No input can crash the engine: random texts, timers and expiry on every bundled flow."""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import Context, Expire, FlowEnded, Message, RaiseAlert, Send, Timeout, WaitUntil, resume, start
from flows.events import EVENT_TYPES
from flows.registry import BUNDLED_DIR

FLOW_IDS = sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml"))
START = datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc)  # the night the UK clocks change
SAMPLES = ["", " ", "\n\t ", "1", "2", "5", "0", "-1", "99999999999", "yes", "NO", "maybe", "skip",
           "PAUSE 7", "BACK", "menu", "😀", "👍🏽👍🏽", "ñ", "Nôl", "not great", "I can't go on",
           "{{ member.name }}", "{% for %}", "\x00", "\u202e", "1 2 3", "the beach", "1.5"]
LONG = st.builds(lambda s: (s * 1600)[:1600], st.text(min_size=1, max_size=6))
TEXT = st.one_of(st.sampled_from(SAMPLES), st.text(max_size=60), LONG)
INPUT = st.one_of(
    st.tuples(st.just("message"), TEXT),
    st.tuples(st.just("timeout"), st.integers(0, 20)),
    st.tuples(st.just("stale"), st.integers(0, 20)),
    st.tuples(st.just("random"), st.text(max_size=10)),
    st.tuples(st.just("expire"), st.none()),
)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                       max_leaves=8)
GOOD_PARAMS = {
    "vote": {"question": "Trip?", "options": ["Beach", "Zoo"], "closes_at": "2026-03-30T17:00:00Z"},
    "meeting_rsvp": {"meeting": {"title": "Meeting", "starts_at": "2026-03-29T09:30:00Z", "place": "Hall"}},
    "pause": {"text": "PAUSE 7"},
    "help": {"text": "menu"},
    "checkin": {},
}
PARAMS = st.one_of(
    st.sampled_from([None, {}]),
    st.dictionaries(st.sampled_from(["question", "options", "closes_at", "meeting", "text", "args", "keyword"]),
                    JSONISH, max_size=5),
)
MEMBER = st.fixed_dictionaries({
    "id": st.one_of(st.text(max_size=10), st.integers()),
    "name": st.one_of(st.none(), st.text(max_size=30)),
    "language": st.one_of(st.none(), st.sampled_from(["en", "cy", "CY", "fr", "", "xx-YY"]), st.integers()),
    "fields": st.one_of(st.just({}), st.fixed_dictionaries({"paused_until": st.one_of(
        st.text(max_size=30), st.sampled_from(["2026-03-30T10:00:00Z", "2026-01-01T00:00:00Z"]))})),
})
COMMUNITY = st.fixed_dictionaries({
    "name": st.one_of(st.none(), st.text(max_size=20)),
    "timezone": st.sampled_from(["Europe/London", "America/New_York", "Nope/Zone", "", None, 5]),
    "language": st.sampled_from([None, "en", "cy", "zz"]),
    "help_text": st.just(""),
})
WAIT_KINDS = {"reminder", "no_answer", "wait", "expiry"}


def check(flow, outcome, now) -> None:
    """Invariants of any outcome: JSON state, known events, sane values."""
    if outcome.state is not None:
        assert json.loads(json.dumps(outcome.state)) == outcome.state
        assert outcome.state["step"] in flow.steps
    ended = [e for e in outcome.events if isinstance(e, FlowEnded)]
    assert len(ended) <= 1
    if ended:
        assert outcome.events[-1] is ended[0] and outcome.state is None
        assert ended[0].reason != "error", "the engine hit an internal error"
    for event in outcome.events:
        assert isinstance(event, EVENT_TYPES)
        json.dumps(event.to_dict())
        if isinstance(event, Send):
            assert event.text.strip() and len(event.text) <= 1600 and event.step in flow.steps
        if isinstance(event, WaitUntil):
            assert event.kind in WAIT_KINDS and event.at.tzinfo is not None and event.at >= now
        if isinstance(event, RaiseAlert):
            assert event.severity in ("low", "medium", "high")


@pytest.mark.parametrize("flow_id", FLOW_IDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), inputs=st.lists(INPUT, max_size=30), member=MEMBER, community=COMMUNITY)
def test_no_input_crashes_any_bundled_flow(registry, flow_id, data, inputs, member, community):
    flow = registry.get(flow_id)
    params = data.draw(st.one_of(st.just(GOOD_PARAMS[flow_id]), PARAMS), label="params")
    ids = itertools.count()
    now = START
    ctx = Context({"channel": "sms", "status": "active", **member}, community, now, lambda: f"t{next(ids)}")
    outcome = start(flow, ctx, params)
    check(flow, outcome, now)
    seen: list[str] = []
    for kind, value in inputs:
        seen += [e.token for e in outcome.events if isinstance(e, WaitUntil)]
        now += timedelta(minutes=47)
        ctx = Context(ctx.member, ctx.community, now, ctx.new_id)
        live = sorted((outcome.state or {}).get("timers", {}))
        if kind == "message":
            event = Message(value)
        elif kind == "timeout" and live:
            event = Timeout(live[value % len(live)])
        elif kind == "stale" and seen:
            event = Timeout(seen[value % len(seen)])
        elif kind == "expire":
            event = Expire()
        else:
            event = Timeout(str(value))
        before = outcome.state
        outcome = resume(flow, before, event, ctx)
        check(flow, outcome, now)
        if isinstance(event, Timeout) and event.token not in (before or {}).get("timers", {}):
            assert outcome.events == [] and outcome.state is before
        if outcome.state is None:
            break
