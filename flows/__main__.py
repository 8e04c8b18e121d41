"""`python -m flows`: check flow files, run their examples, write the schema.

    python -m flows validate [PATH...]   each file's problems, one a line, or ok (bundled if no PATH)
    python -m flows test [PATH...]       run example conversations
    python -m flows schema               rewrite flows/schema/flow.schema.json
"""
from __future__ import annotations

import sys
from pathlib import Path

from flows.examples import run_examples
from flows.flow_schema import write_schema
from flows.loader import load_flow_file
from flows.registry import BUNDLED_DIR


def _paths(args: list[str]) -> list[Path]:
    found: list[Path] = []
    for arg in args or [str(BUNDLED_DIR)]:
        path = Path(arg)
        found.extend(sorted(path.glob("*.y*ml")) if path.is_dir() else [path])
    return found


def main(argv: list[str]) -> int:
    """Run one command; the exit status is 1 when anything failed."""
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "schema":
        write_schema()
        return 0
    if command not in ("validate", "test"):
        print(__doc__)
        return 2
    failed = False
    for path in _paths(args):
        flow, problems = load_flow_file(path)
        for problem in problems:
            print(f"{problem.severity}: {problem}")
        failed |= flow is None
        if command == "validate" and flow is not None:
            print(f"ok: {path}: flow {flow.id!r}, {len(flow.steps)} steps")
        if command == "test" and flow is not None:
            for result in run_examples(flow):
                print(f"{'ok  ' if result.ok else 'FAIL'} {flow.id}: {result.name}")
                if not result.ok:
                    print("    " + result.details.replace("\n", "\n    "))
                failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
