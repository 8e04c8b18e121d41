"""Structural validation against the flow schema, with plain-English messages."""
from __future__ import annotations

import difflib
from functools import lru_cache

from jsonschema import Draft202012Validator

from flows.flow_schema import DRAFT, build_schema, definitions, step_schema
from flows.steps import STEP_TYPES

Finding = tuple  # (path, message, suggestion)


def inline_refs(schema, defs: dict):
    """`schema` with every local $ref replaced by its definition (faster to check)."""
    if isinstance(schema, dict):
        if "$ref" in schema and len(schema) == 1:
            return inline_refs(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
        return {k: inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inline_refs(v, defs) for v in schema]
    return schema


@lru_cache(maxsize=1)
def _top() -> Draft202012Validator:
    return Draft202012Validator(inline_refs(build_schema(load_time=True), definitions()))


@lru_cache(maxsize=32)
def _step(name: str) -> Draft202012Validator:
    schema = {"$schema": DRAFT, **step_schema(name)}
    return Draft202012Validator(inline_refs(schema, definitions()))


def _field(path) -> str:
    named = [p for p in path if isinstance(p, str)]
    return named[-1] if named else "this"


WORDS = {"object": "a mapping", "array": "a list", "string": "text", "number": "a number",
         "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _types(error) -> list[str]:
    if error.validator == "type":
        value = error.validator_value
        return value if isinstance(value, list) else [value]
    return [t for child in error.context or () for t in _types(child)]


def _shape(error) -> str:
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description:
        return description
    names = list(dict.fromkeys(WORDS.get(t, t) for t in _types(error)))
    return " or ".join(names) if names else "something else"


def _deepest(error):
    """Inside anyOf/oneOf, the error from the branch whose shape fitted."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        fitted = [e for e in error.context if e.validator != "type"]
        if not fitted:
            break
        error = max(fitted, key=lambda e: len(e.absolute_path))
    return error


def describe(error, base: tuple = ()) -> list[Finding]:
    """(path, message, suggestion) findings for one jsonschema error."""
    path = base + tuple(error.absolute_path)
    instance, kind = error.instance, error.validator
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        found = []
        for key in sorted(set(instance) - set(known)):
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            found.append((path + (key,), f"unknown field '{key}'{hint}", close[0] if close else None))
        return found
    if kind == "required":
        missing = [k for k in error.validator_value if k not in instance]
        return [(path, f"missing field '{k}'", None) for k in missing]
    if kind in ("anyOf", "oneOf") and error.context:
        deepest = _deepest(error)
        if deepest is not error:
            return describe(deepest, base)
        return [(path, f"'{_field(path)}' should be {_shape(error)}", None)]
    if kind in ("enum", "const") and _field(path) == "type":
        known = ", ".join(sorted(STEP_TYPES))
        close = difflib.get_close_matches(str(instance), list(STEP_TYPES), n=1)
        return [(path, f"unknown step type '{instance}' (known: {known})", close[0] if close else None)]
    if kind == "enum":
        options = ", ".join(str(v) for v in error.validator_value)
        return [(path, f"'{_field(path)}' must be one of: {options} (not {instance!r})", None)]
    if kind in ("pattern", "type"):
        return [(path, f"'{_field(path)}' should be {_shape(error)}, not {instance!r}", None)]
    return [(path, f"'{_field(path)}': {error.message}", None)]


def structure_findings(tree) -> list[Finding]:
    """Every structural finding for a parsed flow file (whole file, then steps)."""
    found: list[Finding] = []
    for error in _top().iter_errors(tree):
        found.extend(describe(error))
    steps = tree.get("steps") if isinstance(tree, dict) else None
    if isinstance(steps, list):
        for index, raw in enumerate(steps):
            if isinstance(raw, dict) and isinstance(raw.get("type"), str) and raw["type"] in STEP_TYPES:
                for error in _step(raw["type"]).iter_errors(raw):
                    found.extend(describe(error, ("steps", index)))
    return found
