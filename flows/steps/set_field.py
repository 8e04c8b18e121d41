"""set_field: set (or with `value: null`, clear) a member's custom field.

```yaml
- id: pause
  type: set_field
  field: paused_until
  value: "{{ now | add_days(7) | iso }}"
```
"""
from __future__ import annotations

from flows.steps.base import NAME, STEP_ID, TEMPLATE, Go, StepType, register


@register
class SetFieldStep(StepType):
    """Change one field on the member's record."""

    name = "set_field"
    properties = {
        "field": NAME,
        "value": {"anyOf": [TEMPLATE, {"type": ["number", "boolean", "null"]}]},
        "next": STEP_ID,
    }
    required = ("field", "value")

    def texts(self, config):
        """A text value is a template."""
        return [(("value",), "template")] if isinstance(config.get("value"), str) else []

    def enter(self, step, run):
        """Render the value and set the field."""
        run.set_field(step.get("field"), run.value(step.get("value")))
        return Go()
