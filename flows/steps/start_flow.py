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

from collections.abc import Mapping

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
        """Each text in the params is a template, in a mapping or list (a meeting's title) too."""
        return [(("params", *path), "template") for path in _text_paths(config.get("params") or {})]

    def enter(self, step, run):
        """Emit StartFlow with rendered params."""
        params = {k: _rendered(v, run) for k, v in (step.get("params") or {}).items()}
        run.start_flow(step.get("flow"), params)
        return Finish("started_flow")


def _text_paths(value, path=()):
    """Where the texts are in a param's value: mappings and lists are looked into."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _text_paths(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _text_paths(item, (*path, index))


def _rendered(value, run):
    """A param's value with each text in it rendered, as plain dicts and lists."""
    if isinstance(value, str):
        return run.value(value)
    if isinstance(value, Mapping):
        return {key: _rendered(item, run) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rendered(item, run) for item in value]
    return value
