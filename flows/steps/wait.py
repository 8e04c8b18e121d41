"""wait: pause the flow for a while, or until a time.

```yaml
- id: later
  type: wait
  for: 2h
  next: ask_again
```
`until` (a template giving an ISO time) wins over `for` when it renders to
a time; otherwise `for` is used; with neither readable, or a time already
past, the wait ends at once (no timer: a loop back through it is a loop, which
ends the session, not a text each time the clock looks).
Messages that arrive during a wait are not taken (resume returns no events).
"""
from __future__ import annotations

from flows.durations import duration_problem, parse_duration
from flows.steps.base import DURATION, STEP_ID, TEMPLATE, WAIT, Finding, Go, StepType, register


@register
class WaitStep(StepType):
    """Wait for a duration or until a time, then go on."""

    name = "wait"
    waits = True
    properties = {"for": DURATION, "until": TEMPLATE, "next": STEP_ID}

    def texts(self, config):
        """`until` is a template."""
        return [(("until",), "template")] if "until" in config else []

    def check(self, config, scope):
        """A wait needs a duration or a time."""
        problem = duration_problem(config["for"]) if "for" in config else None
        if problem:
            return [Finding(("for",), f"a wait {problem}")]
        if "for" in config or "until" in config:
            return []
        return [Finding((), "a wait needs 'for' (a duration) or 'until' (a time)")]

    def enter(self, step, run):
        """Start the timer."""
        run.clear_timers()
        at = run.moment(step.get("until")) if step.get("until") else None
        if at is None:
            at = run.now + (parse_duration(step.get("for", "")) or run.now - run.now)
        if at <= run.now:
            return Go()
        run.add_timer(at, "wait")
        return WAIT

    def timeout(self, step, run, kind):
        """The wait is over: go on."""
        return Go() if kind == "wait" else None
