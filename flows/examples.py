"""run_examples(): play the conversations written in a flow file and compare."""
from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from flows import defaults
from flows.clock import to_datetime
from flows.context import Context
from flows.engine import resume, start
from flows.events import FlowEnded, RaiseAlert, SaveResult, Send, SetField, StartFlow, WaitUntil
from flows.flow import thaw
from flows.inputs import Expire, Message, Timeout

INPUTS = ("member", "timeout", "expire")


@dataclass(frozen=True)
class ExampleResult:
    """One example: its name, whether it passed, and a readable diff if not."""

    name: str
    ok: bool
    details: str = ""


def _line(kind: str, value: Any) -> str:
    return f"{kind}: {json.dumps(value, ensure_ascii=False) if kind != 'expire' else ''}".rstrip()


class _Player:
    """Plays one example against the engine the way a host would."""

    def __init__(self, flow, example):
        self.flow, self.example = flow, example
        self.now = to_datetime(example.get("now")) or defaults.EXAMPLE_NOW
        counter = itertools.count(1)
        self.new_id = lambda: f"id-{next(counter)}"
        self.member = {**defaults.EXAMPLE_MEMBER, **thaw(example.get("member") or {})}
        self.member["fields"] = dict(self.member.get("fields") or {})
        self.community = {**defaults.EXAMPLE_COMMUNITY, **thaw(example.get("community") or {})}
        self.meeting = thaw(example["meeting"]) if example.get("meeting") is not None else None
        self.transcript: list[str] = []
        self.timers: dict[str, tuple] = {}
        self.results: dict[str, dict] = {}
        self.starts: list[str] = []
        self.ended: str | bool = False
        self.state = None

    def context(self) -> Context:
        """A context at the example's current time."""
        return Context(dict(self.member), dict(self.community), self.now, self.new_id, self.meeting)

    def apply(self, outcome) -> None:
        """Act on an outcome the way a host would."""
        self.state = outcome.state
        for event in outcome.events:
            if isinstance(event, Send):
                self.transcript.append(_line("hearth", event.text))
            elif isinstance(event, RaiseAlert):
                self.transcript.append(_line("alert", event.severity))
            elif isinstance(event, SaveResult):
                self.results[event.name] = {"value": event.value, "category": event.category}
            elif isinstance(event, SetField):
                self.member["fields"][event.field] = event.value
            elif isinstance(event, WaitUntil):
                self.timers[event.token] = (event.at, event.kind)
            elif isinstance(event, StartFlow):
                self.starts.append(event.flow_id)
            elif isinstance(event, FlowEnded):
                self.ended = event.reason

    def play(self, kind: str, value: Any) -> str | None:
        """Feed one input turn; a note when it could not be played."""
        self.transcript.append(_line(kind, value))
        if kind == "member":
            self.apply(resume(self.flow, self.state, Message(str(value)), self.context()))
            return None
        if kind == "expire":
            self.apply(resume(self.flow, self.state, Expire(), self.context()))
            return None
        live = (self.state or {}).get("timers", {})
        pending = [(at, t) for t, (at, k) in self.timers.items() if k == value and t in live]
        if not pending:
            return f"no '{value}' timer is pending when the example fires one"
        at, token = max(pending)
        self.now = max(self.now, at)
        self.apply(resume(self.flow, self.state, Timeout(token), self.context()))
        return None


def _compare_end(player: _Player, example) -> list[str]:
    found = []
    for name, want in (thaw(example.get("results")) or {}).items():
        got = player.results.get(name)
        want = want if isinstance(want, dict) else {"value": want}
        if got is None or any(str(got.get(k)) != str(v) for k, v in want.items()):
            found.append(f"result '{name}': expected {want}, got {got}")
    for name, want in (thaw(example.get("fields")) or {}).items():
        got = player.member["fields"].get(name, None)
        if str(got) != str(want):
            found.append(f"field '{name}': expected {want!r}, got {got!r}")
    if "starts" in example and list(example["starts"]) != player.starts:
        found.append(f"flows started: expected {list(example['starts'])}, got {player.starts}")
    if "ended" in example and example["ended"] != player.ended:
        found.append(f"ended: expected {example['ended']!r}, got {player.ended!r}")
    return found


def run_example(flow, example) -> ExampleResult:
    """Play one example conversation with a fixed clock and ids."""
    if example.get("now") is not None and to_datetime(example["now"]) is None:
        return ExampleResult(str(example.get("name")), False, f"now: {example['now']!r} is not a time it can run at")
    player = _Player(flow, example)
    params = thaw(example.get("params") or {})
    player.apply(start(flow, player.context(), params))
    expected, notes = [], []
    for turn in example.get("conversation") or ():
        kind, value = next(iter(turn.items()))
        expected.append(_line(kind, value))
        if kind in INPUTS:
            note = player.play(kind, value)
            if note:
                notes.append(note)
    if expected != player.transcript:
        diff = difflib.unified_diff(expected, player.transcript, "expected", "actual", lineterm="", n=2)
        notes.append("conversation differs:\n" + "\n".join(diff))
    notes.extend(_compare_end(player, example))
    return ExampleResult(str(example.get("name")), not notes, "\n".join(notes))


def run_examples(flow) -> list:
    """Run every example conversation in `flow`; one ExampleResult each."""
    return [run_example(flow, example) for example in flow.examples]
