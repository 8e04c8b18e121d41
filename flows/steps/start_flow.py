"""start_flow: hand the member over to another flow; this one ends.

```yaml
- id: to_menu
  type: start_flow
  flow: help
  params: {from: checkin}
```
The host gets StartFlow then FlowEnded('started_flow'). Text params are
templates. The target must exist in the registry (checked by load_registry).
"""
from __future__ import annotations

from flows.steps.base import STEP_ID, Finish, StepType, register


@register
class StartFlowStep(StepType):
    """Start another flow for the member and end this one."""

    name = "start_flow"
    ends = True
    properties = {
        "flow": STEP_ID,
        "params": {"type": "object", "propertyNames": {"pattern": "^[a-z][a-z0-9_]*$"}},
    }
    required = ("flow",)

    def texts(self, config):
        """Each text param is a template."""
        params = config.get("params") or {}
        return [(("params", k), "template") for k, v in params.items() if isinstance(v, str)]

    def enter(self, step, run):
        """Emit StartFlow with rendered params."""
        params = {k: run.value(v) for k, v in (step.get("params") or {}).items()}
        run.start_flow(step.get("flow"), params)
        return Finish("started_flow")
