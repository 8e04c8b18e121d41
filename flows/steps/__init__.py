"""The step types, one module each, registered by their `type` name."""
from __future__ import annotations

from flows.steps import alert, ask, branch, end, save, send, set_field, start_flow, wait
from flows.steps.base import STEP_TYPES, StepType, register

__all__ = ["STEP_TYPES", "StepType", "register"]
_MODULES = (alert, ask, branch, end, save, send, set_field, start_flow, wait)
