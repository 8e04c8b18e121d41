"""save: record a result (a later save of the same name replaces it).

```yaml
- id: mark_no_answer
  type: save
  name: mood
  value: no_answer
  category: no_answer
```
"""
from __future__ import annotations

from flows.steps.base import NAME, STEP_ID, TEMPLATE, Go, StepType, register


@register
class SaveStep(StepType):
    """Save a named result, optionally with a category."""

    name = "save"
    properties = {
        "name": NAME,
        "value": {"anyOf": [TEMPLATE, {"type": ["number", "boolean", "null"]}]},
        "category": NAME,
        "next": STEP_ID,
    }
    required = ("name", "value")

    def texts(self, config):
        """A text value is a template."""
        return [(("value",), "template")] if isinstance(config.get("value"), str) else []

    def enter(self, step, run):
        """Render the value and save it."""
        run.save(step.get("name"), run.value(step.get("value")), step, step.get("category"))
        return Go()
