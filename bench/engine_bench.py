"""Flow engine benchmark: engine steps per second, and loading 100 flow files.

    .venv/bin/python bench/engine_bench.py

Goals: at least 5,000 engine steps a second on the check-in flow in one
process, and under 1 s to load and validate 100 flow files.
"""
from __future__ import annotations

import itertools
import platform
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows import Context, Message, Timeout, WaitUntil, load_registry, resume, start  # noqa: E402
from flows.registry import BUNDLED_DIR  # noqa: E402
from flows.steps import STEP_TYPES  # noqa: E402
from bench._support import Steal  # noqa: E402

STEPS_GOAL = 5_000
LOAD_GOAL = 1.0
FILES = 100
# Conversations through the check-in flow: member texts, or "timer:KIND".
SCRIPTS = [
    ["4", "skip"],
    ["okay I guess", "Looking forward to the garden group"],
    ["bad", "no"],
    ["1", "I feel like I can't go on"],
    ["what?", "not great", "timer:no_answer"],
    ["timer:reminder", "timer:no_answer"],
]


def context(now: datetime, counter) -> Context:
    """A member and community like the service would pass."""
    member = {"id": "m1", "name": "Sam", "language": None, "channel": "sms", "status": "active",
              "fields": {}}
    community = {"name": "Oak House", "timezone": "Europe/London", "language": "en", "help_text": ""}
    return Context(member, community, now, lambda: f"id{next(counter)}")


def converse(flow, script, now) -> int:
    """Play one conversation; returns the number of engine calls."""
    counter = itertools.count()
    outcome = start(flow, context(now, counter), {})
    calls = 1
    timers = {}
    for turn in script:
        timers.update((e.token, e.kind) for e in outcome.events if isinstance(e, WaitUntil))
        if outcome.state is None:
            break
        if turn.startswith("timer:"):
            kind = turn.split(":", 1)[1]
            token = next(t for t in outcome.state["timers"] if timers.get(t) == kind)
            outcome = resume(flow, outcome.state, Timeout(token), context(now, counter))
        else:
            outcome = resume(flow, outcome.state, Message(turn), context(now, counter))
        calls += 1
    return calls


def count_steps(flow, now) -> int:
    """Steps the engine runs for one pass over SCRIPTS (counted once, untimed)."""
    counted = [0]
    for kind in STEP_TYPES.values():
        for name in ("enter", "receive", "timeout"):

            def counting(*args, _original=getattr(kind, name), **kwargs):
                counted[0] += 1
                return _original(*args, **kwargs)

            setattr(kind, name, counting)  # an instance attribute shadows the method
    try:
        for script in SCRIPTS:
            converse(flow, script, now)
    finally:
        for kind in STEP_TYPES.values():
            for name in ("enter", "receive", "timeout"):
                vars(kind).pop(name, None)
    return counted[0]


def bench_engine(seconds: float = 2.0) -> tuple[float, float, float]:
    """(steps/s, engine calls/s, conversations/s) on the check-in flow."""
    registry, _ = load_registry()
    flow = registry.get("checkin")
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    steps_per_pass = count_steps(flow, now)
    passes = calls = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for script in SCRIPTS:
            calls += converse(flow, script, now)
        passes += 1
    elapsed = time.perf_counter() - began
    return (passes * steps_per_pass / elapsed, calls / elapsed,
            passes * len(SCRIPTS) / elapsed)


def write_variants(folder: Path, count: int = FILES) -> None:
    """`count` distinct flow files made from the bundled ones."""
    sources = sorted(BUNDLED_DIR.glob("*.yaml"))
    for number in range(count):
        source = sources[number % len(sources)]
        text = source.read_text(encoding="utf-8")
        flow_id = source.stem
        text = text.replace(f"id: {flow_id}\n", f"id: {flow_id}_{number}\n", 1)
        text = text.replace("version: 1\n", f"version: {number + 1}\n", 1)
        text = text.replace("description: ", f"description: Variant {number}. ", 1)
        text = text.replace("expiry: ", f"# variant {number}\nexpiry: ", 1)
        (folder / f"{flow_id}_{number:03}.yaml").write_text(text, encoding="utf-8")


def bench_load() -> tuple[float, float, int, int]:
    """(first load s, second load s, flows loaded, errors) for 100 files."""
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        write_variants(folder)
        began = time.perf_counter()
        registry, problems = load_registry([folder], include_bundled=False)
        first = time.perf_counter() - began
        began = time.perf_counter()
        load_registry([folder], include_bundled=False)
        second = time.perf_counter() - began
    return first, second, len(registry.flows), len([p for p in problems if p.is_error])


def main() -> int:
    """Run both benchmarks and print the figures beside their goals."""
    print(f"Python {platform.python_version()} on {platform.machine()} ({platform.system()})")
    steal = Steal()
    first, second, loaded, errors = bench_load()
    steps, calls, conversations = bench_engine()
    ok_steps, ok_load = steps >= STEPS_GOAL, first < LOAD_GOAL and errors == 0
    print(f"engine, check-in flow:   {steps:9,.0f} steps/s      goal >= {STEPS_GOAL:,}/s   "
          f"{'ok' if ok_steps else 'MISSED'}")
    print(f"                         {calls:9,.0f} engine calls/s ({conversations:,.0f} conversations/s)")
    print(f"load + validate {FILES} files: {first:8.3f} s (first, in a fresh process)  goal < {LOAD_GOAL:.0f} s   "
          f"{'ok' if ok_load else 'MISSED'}")
    print(f"                         {second:8.3f} s (again, validators already built); "
          f"{loaded} flows loaded, {errors} errors")
    print(steal.note())
    return 0 if ok_steps and ok_load else 1


if __name__ == "__main__":
    sys.exit(main())
