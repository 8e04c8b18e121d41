"""The JSON Schema of flow files, built from the step types' own fields.

`python -m flows schema` writes flows/schema/flow.schema.json; a test
checks the published file matches what this module builds.
"""
from __future__ import annotations

import json
from pathlib import Path

from flows.clock import MOMENT_PATTERN, TIME_PATTERN
from flows.durations import PATTERN as DURATION_PATTERN
from flows.steps import STEP_TYPES
from flows.steps.base import STEP_ID
from flows.triggers import DAY_GROUPS, DAY_NAMES

SCHEMA_PATH = Path(__file__).parent / "schema" / "flow.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
LANGUAGE = {"type": "string", "pattern": "^[a-z]{2,3}$", "description": "a language code such as en or cy"}
TEXT = {"type": "string"}
# A parameter staff pass to `flows start`: required, or optional with a trailing "?" (closes_at?).
# A flow's version is stored as a 32-bit integer (flow_versions.version): a larger one is refused
# when the file loads, not when a member's text first starts the flow.
MAX_VERSION = 2**31 - 1
PARAM = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}[?]?$",
         "description": "a parameter name; a trailing ? makes it optional"}


def _list_or_one(item: dict) -> dict:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def common_defs() -> dict:
    """Definitions shared by the whole file (texts, words, triggers, examples)."""
    translated = {"anyOf": [TEXT, {"type": "object", "minProperties": 1, "propertyNames": LANGUAGE,
                                   "additionalProperties": TEXT}]}
    word_list = {"type": "array", "items": {"type": ["string", "number"]}}
    day = {"enum": [*DAY_GROUPS, *DAY_NAMES]}
    time = {"type": "string", "pattern": TIME_PATTERN, "description": "local time HH:MM"}
    keyword = {"type": "string", "pattern": "^\\S+$", "description": "one word"}
    turn_fields = {"member": {"type": ["string", "number"]}, "hearth": TEXT,
                   "alert": {"enum": ["low", "medium", "high"]},
                   "timeout": {"enum": ["reminder", "no_answer", "wait", "expiry"]},
                   "expire": {"const": True}}
    return {
        "language": LANGUAGE,
        "duration": {"type": "string", "pattern": DURATION_PATTERN,
                     "description": "a duration such as 30m, 2h, 1d or 1d12h"},
        "translated": translated,
        "message": {"anyOf": [{"$ref": "#/$defs/translated"},
                              {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/translated"}}],
                    "description": "text, a map of language to text, or a list of variants"},
        "words": {"anyOf": [word_list, {"type": "object", "propertyNames": LANGUAGE,
                                        "additionalProperties": word_list}]},
        "schedule": {"type": "object", "additionalProperties": False, "required": ["at"],
                     "properties": {"every": _list_or_one(day), "at": _list_or_one(time)}},
        "triggers": {"type": "object", "additionalProperties": False, "properties": {
            "keywords": {"anyOf": [{"type": "array", "items": keyword},
                                   {"type": "object", "propertyNames": LANGUAGE,
                                    "additionalProperties": {"type": "array", "items": keyword}}]},
            "schedule": _list_or_one({"$ref": "#/$defs/schedule"}),
            "facilitator": {"anyOf": [{"type": "boolean"}, {
                "type": "object", "additionalProperties": False,
                "properties": {"params": {"type": "array", "items": PARAM}}}]},
            "catch_all": {"type": "boolean"}}},
        "turn": {"type": "object", "minProperties": 1, "maxProperties": 1,
                 "additionalProperties": False, "properties": turn_fields},
        "example": {"type": "object", "additionalProperties": False, "required": ["name", "conversation"],
                    "properties": {
                        "name": TEXT, "member": {"type": "object"},
                        "now": {"type": "string", "pattern": MOMENT_PATTERN,
                                "description": "the example's time, like 2026-03-02T09:00:00Z"},
                        "community": {"type": "object"}, "meeting": {"type": "object"},
                        "params": {"type": "object"},
                        "conversation": {"type": "array", "items": {"$ref": "#/$defs/turn"}},
                        "results": {"type": "object"}, "fields": {"type": "object"},
                        "starts": {"type": "array", "items": TEXT},
                        "ended": {"anyOf": [TEXT, {"const": False}]}}},
    }


def step_schema(name: str) -> dict:
    """The schema of one step type."""
    kind = STEP_TYPES[name]
    properties = {"id": STEP_ID, "type": {"const": name}, **kind.properties}
    doc = (type(kind).__doc__ or "").strip()
    return {"type": "object", "description": doc, "additionalProperties": False,
            "required": ["id", "type", *kind.required], "properties": properties}


def definitions() -> dict:
    """Every definition: common ones, step types' own, and one per step type."""
    defs = common_defs()
    for name, kind in sorted(STEP_TYPES.items()):
        defs.update(kind.defs)
        defs[f"step_{name}"] = step_schema(name)
    return defs


def top_properties(step: dict) -> dict:
    """The top-level fields of a flow file."""
    return {
        "id": {**STEP_ID, "description": "the flow's id, e.g. checkin"},
        "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
        "description": TEXT,
        "language": {"$ref": "#/$defs/language"},
        "languages": {"type": "array", "items": {"$ref": "#/$defs/language"}, "minItems": 1,
                      "uniqueItems": True},
        "expiry": {"$ref": "#/$defs/duration"},
        "expiry_message": {"$ref": "#/$defs/message"},
        "interrupts": {"type": "boolean"},
        "triggers": {"$ref": "#/$defs/triggers"},
        "steps": {"type": "array", "minItems": 1, "items": step},
        "examples": {"type": "array", "items": {"$ref": "#/$defs/example"}},
    }


def build_schema(load_time: bool = False) -> dict:
    """The flow-file schema; `load_time` leaves steps to per-type validators."""
    names = sorted(STEP_TYPES)
    step = {"type": "object", "required": ["id", "type"],
            "properties": {"id": STEP_ID, "type": {"enum": names}}}
    if not load_time:
        step["allOf"] = [{"if": {"properties": {"type": {"const": n}}, "required": ["type"]},
                          "then": {"$ref": f"#/$defs/step_{n}"}} for n in names]
    return {"$schema": DRAFT, "title": "Hearth flow", "type": "object",
            "additionalProperties": False, "required": ["id", "version", "steps"],
            "properties": top_properties(step), "$defs": definitions()}


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Write the published schema file."""
    path.write_text(json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
