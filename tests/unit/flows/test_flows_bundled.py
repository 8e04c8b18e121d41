"""The bundled flows, their examples, and the published JSON Schema."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from flows import run_examples
from flows.flow_schema import SCHEMA_PATH, build_schema
from flows.registry import BUNDLED_DIR
from flows.steps import STEP_TYPES
from flows.yaml_source import parse_yaml

BUNDLED = sorted(BUNDLED_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize("flow_id", [p.stem for p in BUNDLED])
def test_every_example_conversation_passes(registry, flow_id):
    flow = registry.get(flow_id)
    results = run_examples(flow)
    assert len(results) >= 2
    failed = [f"{r.name}:\n{r.details}" for r in results if not r.ok]
    assert not failed, "\n\n".join(failed)


@pytest.mark.parametrize("flow_id", [p.stem for p in BUNDLED])
def test_the_examples_reach_every_step(registry, flow_id, monkeypatch):
    """A step no example reaches is a text nobody has read in a conversation (`flows test` passes without it)."""
    entered = set()
    for kind in STEP_TYPES.values():
        def enter(step, run, _enter=kind.enter):
            entered.add(step.id)
            return _enter(step, run)
        monkeypatch.setattr(kind, "enter", enter)
    flow = registry.get(flow_id)
    run_examples(flow)
    assert [step for step in flow.steps if step not in entered] == []


def test_at_least_one_flow_is_translated_into_welsh(registry):
    assert any("cy" in f.languages for f in registry.flows.values())


def test_the_published_schema_is_up_to_date(schema):
    assert schema == build_schema(), "run: .venv/bin/python -m flows schema"
    Draft202012Validator.check_schema(schema)


def test_the_schema_knows_every_step_type(schema):
    assert all(f"step_{name}" in schema["$defs"] for name in STEP_TYPES)
    listed = schema["properties"]["steps"]["items"]["properties"]["type"]["enum"]
    assert sorted(listed) == sorted(STEP_TYPES)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_the_schema_validates_every_bundled_flow(schema, path):
    errors = list(Draft202012Validator(schema).iter_errors(parse_yaml(path.read_text(encoding="utf-8"))))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("change", [
    ("type: send", "type: sned"), ("    text: ", "    txt: "), ("version: 1", "version: one"),
])
def test_the_schema_catches_what_an_editor_should_flag(schema, change):
    text = (BUNDLED_DIR / "help.yaml").read_text(encoding="utf-8").replace(*change, 1)
    assert list(Draft202012Validator(schema).iter_errors(parse_yaml(text)))
