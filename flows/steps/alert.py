"""alert: tell the facilitators, with a severity.

```yaml
- id: tell_team
  type: alert
  severity: high
  summary: "{{ member.name }} checked in at 1 of 5."
```
The summary goes to staff, not the member; keep health detail out anyway.
"""
from __future__ import annotations

from flows.steps.base import STEP_ID, TEMPLATE, Go, StepType, register

SEVERITIES = ("low", "medium", "high")


@register
class AlertStep(StepType):
    """Raise an alert for the facilitators, then go on."""

    name = "alert"
    properties = {"severity": {"enum": list(SEVERITIES)}, "summary": TEMPLATE, "next": STEP_ID}
    required = ("severity", "summary")

    def texts(self, config):
        """The summary is a template."""
        return [(("summary",), "template")]

    def enter(self, step, run):
        """Raise the alert."""
        run.alert(step.get("severity"), run.summary(step.get("summary"), step), step)
        return Go()
