"""`python -m flows`: check flow files, run their examples, write the schema.

    python -m flows validate [PATH...]   each file's problems, one a line, or ok (bundled if no PATH)
    python -m flows test [PATH...]       run example conversations
    python -m flows schema               rewrite flows/schema/flow.schema.json
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from flows.examples import run_examples
from flows.flow import Flow
from flows.flow_schema import write_schema
from flows.loader import display_path, load_flow_file
from flows.registry import BUNDLED_DIR, bundled_files, flow_files, settle


def _paths(args: list[str]) -> list[Path] | None:
    """The files named, and those in the folders named; None, with an error printed, when a folder
    holds none that the service would load."""
    found: list[Path] = []
    for arg in args or [str(BUNDLED_DIR)]:
        path = Path(arg)
        try:
            files = flow_files(path) if path.is_dir() else [path]
        except OSError as exc:
            print(f"error: {path} cannot be read ({exc.strerror})")
            return None
        if not files:
            print(f"error: {path} holds no flow files (names ending .yaml or .yml)")
            return None
        found.extend(files)
    return found


def _load(paths: list[Path]) -> list[tuple[Path, Flow]]:
    """Each file that loads, with its flow; every problem printed."""
    loaded = []
    for path in paths:
        flow, problems = load_flow_file(path)
        for problem in problems:
            print(f"{problem.severity}: {problem}")
        if flow is not None:
            loaded.append((path, flow))
    return loaded


def _validate(paths: list[Path]) -> bool:
    """Print each file's problems and those between flows, then ok per good file; True if all are good.

    The files are checked together with the bundled flows they do not replace, as the app loads
    them, so a start_flow to a flow that is not loaded is an error here as well as there.
    """
    loaded = _load(paths)
    given = {os.path.realpath(path) for path in paths}  # a loop of links has no end to resolve to
    # Each bundled file is read once: the given ones above, the rest here (their own problems are
    # the bundled flows', checked by the suite, not the author's).
    bundled = [flow for path in bundled_files() if os.path.realpath(path) not in given
               for flow in (load_flow_file(path)[0],) if flow is not None]
    registry, problems = settle(bundled + [flow for _, flow in loaded])
    for problem in problems:
        print(f"{problem.severity}: {problem}")
    refused = {p.file for p in problems if p.is_error}
    good = [(path, flow) for path, flow in loaded if display_path(flow.source_path) not in refused]
    for path, flow in good:
        used = registry.get(flow.id)
        replaced = "" if used is flow else f" (not used: {display_path(used.source_path)} replaces it)"
        print(f"ok: {path}: flow {flow.id!r}, {len(flow.steps)} steps{replaced}")
    return len(good) == len(paths)


def _test(paths: list[Path]) -> bool:
    """Play each file's examples; True if every file loads and every example passes."""
    loaded = _load(paths)
    passed = len(loaded) == len(paths)
    for _, flow in loaded:
        for result in run_examples(flow):
            print(f"{'ok  ' if result.ok else 'FAIL'} {flow.id}: {result.name}")
            if not result.ok:
                print("    " + result.details.replace("\n", "\n    "))
            passed &= result.ok
    return passed


def main(argv: list[str]) -> int:
    """Run one command; the exit status is 1 when anything failed."""
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "schema":
        write_schema()
        return 0
    if command not in ("validate", "test"):
        print(__doc__)
        return 2
    run = _validate if command == "validate" else _test
    paths = _paths(args)
    return 0 if paths is not None and run(paths) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
