"""end: finish the session (reason `completed` unless given).

```yaml
- id: done
  type: end
```
"""
from __future__ import annotations

from flows.steps.base import Finish, StepType, register


@register
class EndStep(StepType):
    """End the flow with a reason the host records."""

    name = "end"
    ends = True
    # Stored as the conversation's ended_reason, 32 characters wide.
    properties = {"reason": {"type": "string", "pattern": "^[a-z][a-z_]*$", "maxLength": 32}}

    def enter(self, step, run):
        """Finish with the step's reason."""
        return Finish(step.get("reason", "completed"))
