"""House rules for flows/: pure Python, small modules, docstrings, YAML examples."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.steps import STEP_TYPES
from flows.structure import _step
from flows.yaml_source import parse_yaml

PACKAGE = Path(__file__).resolve().parents[3] / "flows"
SOURCES = sorted(PACKAGE.rglob("*.py"))
FORBIDDEN = {"flask", "sqlalchemy", "redis", "rq", "twilio", "service", "workers", "alembic", "psycopg"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_web_database_queue_or_twilio_imports(path):
    assert not _imports(path) & FORBIDDEN


def test_importing_flows_loads_none_of_them():
    code = ("import sys, flows; flows.load_registry(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small_and_public_functions_say_what_they_do(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    tree = ast.parse(text)
    assert ast.get_docstring(tree), "module docstring"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node)
            assert doc and doc.splitlines()[0].strip(), f"{node.name} needs a one-line docstring"


@pytest.mark.parametrize("name", sorted(STEP_TYPES))
def test_each_step_type_shows_a_valid_minimal_yaml_example(name):
    module = sys.modules[type(STEP_TYPES[name]).__module__]
    example = re.search(r"```yaml\n(.*?)```", module.__doc__ or "", re.S)
    assert example, f"{module.__name__} docstring needs a ```yaml example"
    step = parse_yaml(example.group(1))[0]
    assert step["type"] == name
    assert list(_step(name).iter_errors(step)) == []
