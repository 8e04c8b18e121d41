"""Run: one engine call's working set (flow, state, context, events so far)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flows import defaults, language, templating
from flows.clock import UTC, as_utc, to_datetime, zone
from flows.events import FlowEnded, RaiseAlert, SaveResult, Send, SetField, StartFlow, WaitUntil
from flows.exceptions import TemplateFailure
from flows.loader import display_path
from flows.problem import Problem

log = logging.getLogger("flows")


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


class Run:
    """The state being changed and the events emitted during one call."""

    def __init__(self, flow, state: dict, ctx):
        self.flow, self.state, self.ctx = flow, state, ctx
        now = getattr(ctx, "now", None)
        self.now = as_utc(now) if isinstance(now, datetime) else datetime.now(UTC)
        self.member = _dict(getattr(ctx, "member", None))
        self.community = _dict(getattr(ctx, "community", None))
        self.fields = dict(_dict(self.member.get("fields")))
        self.language = language.choose(
            flow.languages, flow.language, self.member.get("language"), self.community.get("language")
        )
        self.events: list = []
        self.ended = False
        self._variables: dict | None = None

    @property
    def params(self) -> dict:
        """The params the session started with."""
        return self.state.setdefault("params", {})

    def variables(self) -> dict:
        """What templates can see (rebuilt after a result or field changes)."""
        if self._variables is None:
            meeting = getattr(self.ctx, "meeting", None)
            if not isinstance(meeting, dict):
                meeting = _dict(self.params.get("meeting"))
            results = self.state.get("results", {})
            self._variables = {
                "member": {**self.member, "fields": self.fields},
                "community": self.community,
                "meeting": meeting,
                "params": self.params,
                "results": {k: v.get("value") for k, v in results.items()},
                "answers": dict(self.state.get("answers", {})),
                "now": self.now,
            }
        return self._variables

    def _render(self, source: str | None, step, instead: str) -> str | None:
        """`source` rendered, or None when it fails for this member's data, logged as a problem of
        the flow's file and step with what is done `instead`."""
        if source is None:
            return None
        try:
            return templating.render(source, self.variables())
        except TemplateFailure as exc:
            where = Problem(display_path(self.flow.source_path), getattr(step, "line", None), getattr(step, "id", None),
                            f"template failed for member {self.member.get('id')}: {exc}; {instead}")
            log.error("flow %s", where)
            return None

    def text(self, message: Any, step) -> str:
        """A message rendered in the member's language, else in the flow's default one; never raises.

        Empty, so not sent, when neither renders for this member (an undefined value in a sum): a
        text with pieces missing ("You have days left") could say something it does not mean.
        """
        day = self.now.astimezone(zone(self.community.get("timezone"))).date().isoformat()
        seed = f"{self.member.get('id')}|{day}|{step.id}"
        primary, fallback = language.select(message, self.language, self.flow.language, seed)
        fallback = fallback if fallback != primary else None
        rendered = self._render(primary, step, "the message was not sent" if fallback is None
                                else "sent in the flow's default language instead")
        if rendered is None and fallback is not None:
            rendered = self._render(fallback, step, "the message was not sent")
        return rendered if rendered is not None else ""

    def moment(self, value: Any) -> datetime | None:
        """A field value rendered and read as a moment; one written without an offset is the
        community's local time."""
        return to_datetime(self.value(value), self.community.get("timezone"))

    def value(self, value: Any) -> Any:
        """A field value: text is rendered as a template, anything else kept."""
        if not isinstance(value, str):
            return value
        rendered = self._render(value, None, "its text without the tags is used")
        return rendered if rendered is not None else templating.strip_tags(value)

    def summary(self, source: Any, step) -> str:
        """An alert's summary rendered; when it fails for this member's data the alert still goes,
        saying its summary could not be written rather than giving one with pieces missing."""
        rendered = self._render(source, step, "the alert says so") if isinstance(source, str) else None
        if rendered is None:
            return f"An alert from {self.flow.id} (step {step.id}); its summary could not be written."
        return rendered

    def send(self, message: Any, step, voice: dict | None = None) -> None:
        """Emit Send unless the text renders empty."""
        text = self.text(message, step).strip()[: defaults.MAX_SEND_CHARS]
        if text:
            self.events.append(Send(text, step.id, voice))

    def save(self, name: str, value: Any, step, category: str | None = None) -> None:
        """Record a result in the state and emit SaveResult."""
        self.state.setdefault("results", {})[name] = {"value": value, "category": category}
        self._variables = None
        self.events.append(SaveResult(name, value, step.id, category))

    def answer(self, step, text: str) -> None:
        """Remember the raw text an ask was answered with."""
        self.state.setdefault("answers", {})[step.id] = text[: defaults.MAX_ANSWER_CHARS]
        self._variables = None

    def set_field(self, field: str, value: Any) -> None:
        """Change a member field (seen by later steps of this call) and emit SetField."""
        self.fields[field] = value
        self._variables = None
        self.events.append(SetField(field, value))

    def alert(self, severity: str, summary: Any, step) -> None:
        """Emit RaiseAlert."""
        self.events.append(RaiseAlert(severity, str(summary or "").strip(), step.id))

    def start_flow(self, flow_id: str, params: dict) -> None:
        """Emit StartFlow."""
        self.events.append(StartFlow(flow_id, params))

    def add_timer(self, at: datetime, kind: str) -> str:
        """Ask the host for a Timeout at `at`; returns its token."""
        token = str(self.ctx.new_id())
        self.state.setdefault("timers", {})[token] = kind
        self.events.append(WaitUntil(at, token, kind))
        return token

    def clear_timers(self) -> None:
        """Forget every timer but the expiry (their Timeouts become stale)."""
        timers = self.state.get("timers", {})
        self.state["timers"] = {t: k for t, k in timers.items() if k == "expiry"}

    def lookup(self, subject: str) -> Any:
        """The value a branch's `on:` names, or None."""
        base, *rest = subject.split(".")
        if base == "local":
            here = self.now.astimezone(zone(self.community.get("timezone")))
            return {"time": here.strftime("%H:%M"), "hour": here.hour,
                    "weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[here.weekday()],
                    "date": here.date().isoformat()}.get(rest[0])
        if base == "results":
            result = _dict(self.state.get("results", {}).get(rest[0]))
            return result.get("category" if rest[1:] == ["category"] else "value")
        source = _dict(self.variables().get(base))
        value = source.get(rest[0])
        for key in rest[1:]:
            value = _dict(value).get(key)
        return value

    def finish(self, reason: str) -> None:
        """End the session."""
        self.ended = True
        self.events.append(FlowEnded(reason))
