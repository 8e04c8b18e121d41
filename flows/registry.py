"""Registry: the flows a community can run, and which one a text starts."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from flows.flow import Flow
from flows.folding import tokens
from flows.graph import cycles, handovers_before_waiting, shortest_path
from flows.language import normalize
from flows.loader import display_path, load_flow_file
from flows.problem import Problem
from flows.triggers import keyword_params

BUNDLED_DIR = Path(__file__).parent / "bundled"


# Words that may follow a keyword without making the text more than a command.
_POLITE = frozenset("please pls plz thanks thank you thx ta plis diolch".split())


def _readings(words: list[str]):
    """(keyword, the words after it) a text may be: its first word ("PAUSE 7"), or its first two
    written together ("check in" for CHECKIN)."""
    if words:
        yield words[0], words[1:]
    if len(words) >= 2:
        yield words[0] + words[1], words[2:]


def _command_like(rest: list[str]) -> bool:
    # A keyword starts a flow only as a command: alone, followed by a number ("PAUSE 7 days"), or
    # by a word of politeness ("Pause please"). "Back pain today" stays an answer mid-flow, and
    # "Holiday was awful" from a member in no flow is something they said, not PAUSE.
    return not rest or rest[0].isdecimal() or all(word in _POLITE for word in rest)


class Registry:
    """Flows by id, with keyword, catch-all and schedule look-ups."""

    def __init__(self, flows: Iterable[Flow] = ()):
        self.flows: dict[str, Flow] = {}
        for flow in flows:
            self.flows[flow.id] = flow

    def get(self, flow_id: str) -> Flow | None:
        """The flow with this id, or None."""
        return self.flows.get(flow_id)

    def match(self, text: str, language: str | None, active: Flow | None = None) -> Flow | None:
        """The flow whose keyword `text` is (alone, before a number, or before a few words of
        politeness; written as one word or two), if any may start."""
        found = self.command(text, language, active)
        return found[0] if found else None

    def command(self, text: str, language: str | None, active: Flow | None = None) -> tuple[Flow, dict] | None:
        """As `match`, with the params the flow starts with: `keyword` as the trigger has it
        ("checkin" for "check in please") and `args`, what follows it."""
        text = text if isinstance(text, str) else ""
        words = tokens(text, limit=6)
        candidates = [f for f in self.flows.values() if active is None or f.interrupts]
        lang = normalize(language)
        for joined, (first, rest) in enumerate(_readings(words)):
            if not (rest[:1] and rest[0].isdecimal()) and (len(words) == 6 or not _command_like(rest)):
                continue  # a number may lead a longer text ("PAUSE 7 days, I'm away"); politeness may not
            owners = [f for f in candidates if lang and first in f.triggers.keywords.get(lang, ())]
            owners += [f for f in candidates if first in f.triggers.all_keywords()]
            if owners:
                params = keyword_params(text)
                if joined:  # the keyword was written as two words: both are the keyword
                    parts = text.split(None, 2)
                    params.update(keyword=first, args=parts[2].strip() if len(parts) > 2 else "")
                return owners[0], params
        return None

    @property
    def catch_all(self) -> Flow | None:
        """The flow for a member in no flow whose text matched no keyword."""
        found = [f for f in self.flows.values() if f.triggers.catch_all]
        return found[-1] if found else None

    def scheduled(self) -> list[Flow]:
        """Flows with a schedule trigger."""
        return [f for f in self.flows.values() if f.triggers.schedules]

    def handover_loops(self) -> list[Problem]:
        """A start_flow chain that comes back to a flow without waiting for the member: it would
        send the same messages again and again, until the host stops following hand-overs."""
        immediate = {flow.id: handovers_before_waiting([(s.id, s.config) for s in flow.steps.values()])
                     for flow in self.flows.values()}
        graph = {flow_id: [target for _, target in found] for flow_id, found in immediate.items()}
        problems = []
        for loop in cycles(list(self.flows), graph):
            for flow_id in [f for f in self.flows if f in loop]:
                flow = self.flows[flow_id]
                for step_id, target in immediate[flow_id]:
                    if target in loop:
                        shown = " -> ".join([flow_id] + shortest_path(graph, target, flow_id))
                        problems.append(Problem(display_path(flow.source_path), flow.steps[step_id].line, step_id,
                                                f"start_flow to '{target}' can come back to '{flow_id}' without "
                                                f"waiting for the member: {shown}"))
        return problems

    def cross_check(self) -> list[Problem]:
        """Problems between flows: missing start_flow targets, hand-over loops, shared keywords."""
        problems = self.handover_loops()
        owners: dict[str, str] = {}
        for flow in self.flows.values():
            shown = display_path(flow.source_path)
            for step in (step for step in flow.steps.values() if step.type == "start_flow"):
                target = self.flows.get(step.get("flow"))
                if target is None:
                    problems.append(Problem(shown, step.line, step.id,
                                            f"start_flow to a flow that is not loaded: '{step.get('flow')}'"))
                elif missing := sorted(target.triggers.required_params() - set(step.get("params") or {})):
                    problems.append(Problem(shown, step.line, step.id, f"start_flow to '{target.id}' does not pass"
                                            " what it needs: " + ", ".join(f"params.{n}" for n in missing)))
            for word in sorted(flow.triggers.all_keywords()):
                if word in owners and owners[word] != flow.id:
                    problems.append(Problem(shown, None, None, f"keyword '{word}' also starts "
                                            f"'{owners[word]}'; the first loaded wins", "warning"))
                owners.setdefault(word, flow.id)
        if len([f for f in self.flows.values() if f.triggers.catch_all]) > 1:
            problems.append(Problem("<registry>", None, None, "more than one catch_all flow; "
                                    f"using '{self.catch_all.id}'", "warning"))
        return problems


def bundled_files() -> list[Path]:
    """The bundled flow files, in the order they load."""
    return flow_files(BUNDLED_DIR)


def flow_files(directory: str | os.PathLike) -> list[Path]:
    """The flow files in a folder, as the service loads them: names ending .yaml or .yml, in any
    case (a community's Checkin.YAML, saved by a Windows editor, is its check-in). A link that
    leads nowhere is one too, so that loading it names it as a file that cannot be read."""
    return sorted(path for path in Path(directory).iterdir() if path.suffix.lower() in (".yaml", ".yml")
                  and (path.is_file() or (path.is_symlink() and not path.exists())))


def settle(loaded: Iterable[Flow]) -> tuple[Registry, list[Problem]]:
    """A Registry of loaded flows (a later one replaces an earlier with its id), without those
    that start a flow not in it, and the problems between flows: why each was refused, and warnings.

    A refused file gives way to the flow it replaced, if any (a broken override of the bundled
    check-in leaves the bundled one running, and says so, rather than no check-in at all).
    """
    candidates: dict[str, list[Flow]] = {}
    for flow in loaded:
        candidates.setdefault(flow.id, []).append(flow)
    problems = [problem for problem in map(_twice, candidates.values()) if problem is not None]
    while True:
        registry = Registry(flows[-1] for flows in candidates.values() if flows)
        broken = [p for p in registry.cross_check() if p.is_error]
        if not broken:
            break
        problems.extend(broken)
        refused = {p.file for p in broken}
        for flow_id, flows in candidates.items():
            if flows and display_path(flows[-1].source_path) in refused:
                dropped = flows.pop()
                if flows:
                    problems.append(Problem(display_path(dropped.source_path), None, None,
                                            f"refused, so flow '{flow_id}' is the one in"
                                            f" {display_path(flows[-1].source_path)}", "warning"))
    problems.extend(p for p in registry.cross_check() if not p.is_error)
    return registry, problems


def _twice(flows: list[Flow]) -> Problem | None:
    """A warning when one folder holds two files of the same flow: which one wins is only the
    order of their names. (A file in another folder replacing a bundled flow is what overriding is.)"""
    folders = [Path(flow.source_path).parent for flow in flows]
    if len(folders) == len(set(folders)):
        return None
    return Problem(display_path(flows[-1].source_path), None, None,
                   f"flow '{flows[-1].id}' is defined by more than one file in this folder: "
                   + ", ".join(display_path(f.source_path) for f in flows) + "; the last one is used", "warning")


def load_registry(extra_dirs: Iterable[str | os.PathLike] = (), include_bundled: bool = True):
    """Bundled flows, then extra dirs (same id overrides); (Registry, problems)."""
    folders = ([BUNDLED_DIR] if include_bundled else []) + [Path(d) for d in extra_dirs]
    problems: list[Problem] = []
    flows: list[Flow] = []
    for folder in folders:
        try:
            paths = flow_files(folder)
        except OSError as exc:  # missing, not a folder, or not ours to read
            problems.append(Problem(display_path(folder), None, None, f"not a folder of flows ({exc.strerror})"))
            continue
        for path in paths:
            flow, found = load_flow_file(path)
            problems.extend(found)
            if flow is not None:
                flows.append(flow)
    registry, between = settle(flows)
    return registry, problems + between
