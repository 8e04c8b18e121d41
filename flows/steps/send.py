"""send: a message to the member.

```yaml
- id: thanks
  type: send
  text: "Thanks, {{ member.name | first_name }}. See you tomorrow."
```
`text` may be a map of language to text, or a list of variants (one is
picked per member and day, so tests stay stable).
"""
from __future__ import annotations

from flows.steps.base import MESSAGE, STEP_ID, Go, StepType, register


@register
class SendStep(StepType):
    """Send one message, then go on."""

    name = "send"
    properties = {"text": MESSAGE, "next": STEP_ID}
    required = ("text",)

    def texts(self, config):
        """The message is an SMS."""
        return [(("text",), "sms")]

    def enter(self, step, run):
        """Send the text in the member's language."""
        run.send(step.get("text"), step)
        return Go()
