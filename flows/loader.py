"""load_flow_text() / load_flow_file(): YAML in, a checked Flow (or problems) out."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flows import defaults
from flows.durations import duration_problem, parse_duration
from flows.flow import Flow, Step, freeze
from flows.folding import fold, tokens
from flows.graph import graph_findings
from flows.message_checks import message_findings
from flows.problem import Problem
from flows.scope import Scope
from flows.steps import STEP_TYPES
from flows.structure import structure_findings
from flows.triggers import parse_triggers
from flows.yaml_source import Mapping, YamlProblem, line_at, parse_yaml


class _Report:
    """Collects problems, turning tree paths into lines and step ids."""

    def __init__(self, tree: Any, file: str):
        self.tree, self.file, self.problems = tree, file, []

    def step_id(self, path: tuple) -> str | None:
        """The id of the step a path points into, if any."""
        steps = self.tree.get("steps") if isinstance(self.tree, dict) else None
        if len(path) > 1 and path[0] == "steps" and isinstance(steps, list):
            raw = steps[path[1]] if isinstance(path[1], int) and path[1] < len(steps) else None
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                return raw["id"]
        return None

    def add(self, path: tuple, message: str, severity: str = "error", suggestion=None) -> None:
        """Record a problem at `path`."""
        problem = Problem(self.file, line_at(self.tree, path), self.step_id(path), message, severity, suggestion)
        if problem not in self.problems:  # one mistake can fail two checks that say the same
            self.problems.append(problem)

    @property
    def failed(self) -> bool:
        """True once any error has been recorded."""
        return any(p.is_error for p in self.problems)


def _scope(tree: Mapping, triggers) -> Scope:
    results, answers = set(), set()
    for raw in tree["steps"]:
        if raw["type"] == "ask":
            answers.add(raw["id"])
            if "result" in raw:
                results.add(raw["result"])
        if raw["type"] == "save":
            results.add(raw["name"])
    language = tree.get("language", defaults.LANGUAGE)
    languages = tuple(tree.get("languages") or (language,))
    return Scope(triggers.params(), frozenset(results), frozenset(answers), languages, language)


def _check(tree: Mapping, report: _Report, scope: Scope) -> None:
    seen: dict[str, int] = {}
    for index, raw in enumerate(tree["steps"]):
        if raw["id"] in seen:
            report.add(("steps", index, "id"), f"step id '{raw['id']}' is used twice")
        seen.setdefault(raw["id"], index)
    if scope.default_language not in scope.languages:
        report.add(("languages",), f"'languages' must include the default language '{scope.default_language}'")
    keywords = (tree.get("triggers") or {}).get("keywords") or {}
    groups = keywords.items() if isinstance(keywords, dict) else [(None, keywords)]
    for lang, words in groups:
        for index, word in enumerate(words):
            if tokens(str(word), limit=2) != [fold(str(word))]:
                path = ("triggers", "keywords") + ((lang,) if lang else ()) + (index,)
                report.add(path, f"keyword '{word}' can never match: use letters, digits, - or '")
    expiry_problem = duration_problem(tree["expiry"]) if "expiry" in tree else None
    if expiry_problem:
        report.add(("expiry",), f"expiry {expiry_problem}")
    for index, raw in enumerate(tree["steps"]):
        kind = STEP_TYPES[raw["type"]]
        base = ("steps", index)
        for finding in kind.check(raw, scope):
            report.add(base + finding.path, finding.message, finding.severity, finding.suggestion)
        for path, role in kind.texts(raw):
            value = raw
            for key in path:
                value = value[key]
            for found in message_findings(value, role, scope):
                report.add(base + path + found.path, found.message, found.severity, found.suggestion)
    if "expiry_message" in tree:
        for found in message_findings(tree["expiry_message"], "sms", scope):
            report.add(("expiry_message",) + found.path, found.message, found.severity, found.suggestion)
    order = [(raw["id"], raw) for raw in tree["steps"]]
    if len(seen) < len(order):
        return  # with two steps of one id, the routes between steps cannot be told apart
    where = {}
    for index, raw in enumerate(tree["steps"]):
        where.setdefault(raw["id"], index)
    for found in graph_findings(order):
        report.add(("steps", where[found.step]) + found.path, found.message)


def _build(tree: Mapping, text: str, source_path: str, triggers, scope: Scope) -> Flow:
    steps = {}
    ids = [raw["id"] for raw in tree["steps"]]
    for raw in tree["steps"]:
        kind = STEP_TYPES[raw["type"]]
        steps[raw["id"]] = Step(raw["id"], raw["type"], raw.line, freeze(dict(raw)), kind.prepare(raw))
    following = {a: b for a, b in zip(ids, ids[1:] + [None])}
    return Flow(
        id=tree["id"], version=tree["version"], language=scope.default_language,
        languages=scope.languages,
        expiry=parse_duration(tree.get("expiry", "")) or defaults.EXPIRY,
        steps=MappingProxyType(steps), triggers=triggers,
        interrupts=bool(tree.get("interrupts", False)), source_path=source_path,
        source_text=text, digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        examples=freeze(tree.get("examples", [])), expiry_message=freeze(tree.get("expiry_message")),
        description=tree.get("description", ""), following=MappingProxyType(following),
    )


def _step_at(text: str, line: int | None) -> str | None:
    """The id of the step a line of `text` is in, read from the lines themselves (the YAML would
    not parse): the last item of the top-level `steps:` list begun by then, if its id came first."""
    step, item_indent = None, None
    in_steps = False
    for row in text.splitlines()[:line or 0]:
        stripped = row.lstrip()
        indent = len(row) - len(stripped)
        if not indent and stripped and not stripped.startswith(("#", "-")):
            in_steps, step, item_indent = stripped.startswith("steps:"), None, None
        elif in_steps and stripped[:2] in ("- ", "-"):
            item_indent = indent if item_indent is None else item_indent
            if indent == item_indent:
                found = _STEP_ID.match(stripped)
                step = found.group(1) if found else None
    return step


_STEP_ID = re.compile(r"-\s+(?:\{\s*)?id:\s*['\"]?([A-Za-z0-9_-]+)")


def load_flow_text(text: str, path: str = "<string>", source_path: str | None = None):
    """Parse and check a flow; (Flow, problems), Flow None if any error."""
    try:
        tree = parse_yaml(text)
    except YamlProblem as exc:
        return None, [Problem(path, exc.line, _step_at(text, exc.line), exc.message)]
    if not isinstance(tree, Mapping):
        return None, [Problem(path, getattr(tree, "line", 1), None,
                              "a flow file must be a mapping with id, version and steps")]
    report = _Report(tree, path)
    for found_path, message, suggestion in structure_findings(tree):
        report.add(found_path, message, "error", suggestion)
    if report.failed:
        return None, report.problems
    triggers = parse_triggers(tree.get("triggers"))
    scope = _scope(tree, triggers)
    _check(tree, report, scope)
    if report.failed:
        return None, report.problems
    return _build(tree, text, source_path or path, triggers, scope), report.problems


def display_path(path: str | os.PathLike) -> str:
    """`path` relative to the working directory when it lies beneath it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def load_flow_file(path: str | os.PathLike):
    """Read and check one flow file; (Flow, problems), Flow None if any error."""
    shown = display_path(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        if Path(path).is_symlink():  # a link to a file since moved or deleted: say where it led
            return None, [Problem(shown, None, None, f"cannot read the file: it links to {os.readlink(path)},"
                                                     f" which cannot be read ({exc.strerror})")]
        return None, [Problem(shown, None, None, f"cannot read the file: {exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        return None, [Problem(shown, data.count(b"\n", 0, exc.start) + 1, None,
                              f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column} (save the file as UTF-8)")]
    return load_flow_text(text, shown, source_path=str(Path(path).resolve()))
