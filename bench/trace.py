"""What one inbound SMS or one send costs, in-process: the SQL it runs, its CPU and wall time.

    .venv/bin/python bench/trace.py inbound [--body hello] [--no-freeze]   # POST /twilio/sms, Flask's test client
    .venv/bin/python bench/trace.py send                     # service.sending.deliver() to the Twilio double
    .venv/bin/python bench/trace.py inbound --breakdown      # and the CPU of each main part of the path
    .venv/bin/python bench/trace.py inbound --profile 40     # then where the CPU goes, by cProfile

No HTTP server, no RQ: this isolates Hearth's own work from gunicorn, the load generator and the
worker loop, so a change in service/ shows up here first. It prints every statement of one
warmed-up request (or send), then the averages over a few hundred. PostgreSQL database
`hearth_bench` (wiped first) or --database sqlite; Redis db 14.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    ACCOUNT_SID, AUTH_TOKEN, MEMBER_PHONE, banner, database_url, make_app, percentile, reset_database, reset_redis,
)


class Statements:
    """Counts and times every statement the engine runs; keeps the text while `keep` is on."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.count, self.seconds, self.keep, self.kept = 0, 0.0, False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        for name in ("commit", "rollback"):  # savepoints are statements and show as such
            event.listen(engine, name, self._marker(name.upper()))

    def _before(self, conn, cursor, statement, params, context, executemany):
        conn.info["bench_started"] = time.perf_counter()
        if self.keep:
            self.kept.append(" ".join(statement.split())[:140])

    def _after(self, conn, cursor, statement, params, context, executemany):
        self.count += 1
        self.seconds += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())

    def _marker(self, name):
        def record(conn, *args):
            if self.keep:
                self.kept.append(name)
        return record

    def reset(self) -> None:
        self.count, self.seconds = 0, 0.0


class Collections:
    """The garbage collector's pauses while it is on: (generation, milliseconds) each."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._started) * 1000))

    def __enter__(self) -> "Collections":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> str:
        parts = []
        for generation in (0, 1, 2):
            pauses = [ms for g, ms in self.pauses if g == generation]
            if pauses:
                parts.append(f"gen{generation} {len(pauses)}x, longest {max(pauses):.1f} ms")
        return "; ".join(parts) or "none"


def measure(label: str, calls, stmts: Statements, profile: list | None = None, top: int = 25) -> None:
    """Time `calls`; then, given `profile` (more calls of the same kind), run those under cProfile
    and print the `top` functions by time of their own and by time in all."""
    stmts.reset()
    laps = []
    cpu, wall = time.process_time(), time.perf_counter()
    with Collections() as collections:
        for call in calls:
            started = time.perf_counter()
            call()
            laps.append((time.perf_counter() - started) * 1000)
    n = len(laps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    laps.sort()
    print(f"{label} x{n}: wall p50 {percentile(laps, 50):.2f} ms, p99 {percentile(laps, 99):.2f} ms;"
          f" per call {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU in this process,"
          f" {stmts.count / n:.1f} statements (savepoints included, COMMIT/ROLLBACK not) taking"
          f" {stmts.seconds / n * 1000:.2f} ms")
    print(f"garbage collections during those calls ({'after' if gc.get_freeze_count() else 'without'}"
          f" gc.freeze(), as gunicorn.conf.py does in a web worker): {collections.summary()}")
    if profile:
        print_profile(profile, top)


def print_profile(calls, top: int) -> None:
    """cProfile over `calls`: where the CPU goes (its own cost inflates every figure)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile(time.process_time)  # CPU, not the waits on the database
    profiler.enable()
    for call in calls:
        call()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"\ncProfile over {len(calls)} more calls, by {order}:")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def trace_inbound(url: str, body: str, count: int, freeze: bool = True, profile: int = 0,
                  breakdown: Breakdown | None = None) -> None:
    from bench.inbound import seed, signed_requests

    seed(url, [MEMBER_PHONE])
    public = "http://127.0.0.1:8000"
    app = make_app(url, PUBLIC_BASE_URL=public)
    if freeze:
        gc.freeze()  # what a web worker does once it has built the app (gunicorn.conf.py)
    stmts = Statements(app.extensions["hearth_db"].engine)
    client = app.test_client()
    requests = signed_requests(count + 51 + (count if profile else 0), public + "/twilio/sms", body, 7)

    def post(sig: str, form: str):
        def call():
            answer = client.post("/twilio/sms", data=form, headers={
                "X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})
            if answer.status_code != 200:
                raise SystemExit(f"Hearth answered {answer.status_code}: {answer.data[:200]!r}")
            return answer
        return call

    for sig, form in requests[:50]:
        post(sig, form)()
    stmts.keep = True
    answer = post(*requests[50])()
    stmts.keep = False
    print(f"one inbound {body!r} from a member; Hearth answers: {answer.data.decode()[:400]}")
    for i, line in enumerate(stmts.kept, 1):
        print(f"  {i:2d} {line}")
    print()
    if breakdown is not None:
        breakdown.reset()
    measure("POST /twilio/sms (test client)", [post(s, f) for s, f in requests[51:51 + count]], stmts)
    if breakdown is not None:
        breakdown.print(count)
    if profile:
        print_profile([post(s, f) for s, f in requests[51 + count:]], profile)


def trace_send(url: str, count: int, profile: int = 0) -> None:
    from sqlalchemy import select

    from bench.send import prepare
    from service.database import db
    from service.models import OutboundMessage
    from service.sending import deliver
    from service.twilio_double import TwilioDouble

    prepare(url, 100, count + 51 + (count if profile else 0))
    reset_redis()  # the jobs `prepare` enqueued are not needed: deliver() is called directly
    double = TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False).start()
    try:
        app = make_app(url, TWILIO_API_BASE=double.url, HEARTH_SEND_RATE="0")
        stmts = Statements(app.extensions["hearth_db"].engine)
        with app.app_context():
            runtime = app.extensions["hearth_runtime"]
            sender = app.config["HEARTH"].sender
            ids = db.session.scalars(select(OutboundMessage.id).order_by(OutboundMessage.id)).all()
            db.session.remove()

            def send(outbox_id: int):
                def call():
                    state = deliver(db.session, outbox_id, transport=runtime.transport, limiter=runtime.limiter,
                                    sender=sender, final_attempt=False)
                    db.session.remove()
                    if state != "sent":
                        raise SystemExit(f"outbox row {outbox_id} ended {state}")
                return call

            for outbox_id in ids[:50]:
                send(outbox_id)()
            stmts.keep = True
            send(ids[50])()
            stmts.keep = False
            print("one deliver() of a broadcast row (HEARTH_SEND_RATE=0; the double runs in this process):")
            for i, line in enumerate(stmts.kept, 1):
                print(f"  {i:2d} {line}")
            print()
            measure("deliver() (the double's CPU counts here too)", [send(i) for i in ids[51:51 + count]], stmts,
                    [send(i) for i in ids[51 + count:]], profile)
    finally:
        double.stop()


class Breakdown:
    """CPU time (this process's, so the waits on the database are left out) spent in each of the
    inbound path's main parts, by wrapping them where they are called from."""

    # (module, function, also rebound in): what one inbound text runs, in the order it runs them.
    PARTS = (
        ("service.inbound", "handle_sms", ("service.webhooks",)),
        ("service.inbound", "_take_sender", ()),
        ("service.conversations", "active_conversation", ("service.converse",)),
        ("service.conversations", "start_flow", ("service.converse",)),
        ("service.conversations", "resume_flow", ("service.converse",)),
        ("flows", "start", ()),
        ("flows", "resume", ()),
        ("service.inbound", "_twiml", ()),
        ("service.inbound", "_record", ()),
        ("service.inbound", "record_twiml_replies", ()),
    )

    def __init__(self) -> None:
        import importlib

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        for module_name, name, also in self.PARTS:
            module = importlib.import_module(module_name)
            wrapped = self._timed(f"{module_name.split('.')[-1]}.{name}", getattr(module, name))
            for target in (module, *map(importlib.import_module, also)):
                setattr(target, name, wrapped)
        from sqlalchemy.orm import Session

        Session.commit = self._timed("Session.commit", Session.commit)

    def _timed(self, label: str, function):
        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.process_time() - started
                self.calls[label] = self.calls.get(label, 0) + 1
        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def print(self, requests: int) -> None:
        print(f"\nCPU per request in each part (process time, so not the waits on the database), over {requests}:")
        for label, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            print(f"  {seconds / requests * 1e6:7.0f} us  {label} ({self.calls[label] / requests:g} calls)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("inbound", "send"))
    parser.add_argument("--body", default="hello", help="inbound: the member's message (default hello)")
    parser.add_argument("--count", type=int, default=300, help="calls to average over (default 300)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--breakdown", action="store_true",
                        help="inbound: also the CPU each main part of the path took (Breakdown.PARTS)")
    parser.add_argument("--no-freeze", action="store_true",
                        help="inbound: leave the app's objects to the garbage collector (a web worker freezes them)")
    parser.add_argument("--profile", type=int, nargs="?", const=25, default=0, metavar="TOP",
                        help="then run as many calls again under cProfile and print the TOP functions (default 25)")
    args = parser.parse_args(argv)
    if not 10 <= args.count <= 5000:
        parser.error("keep --count in 10..5000")
    banner(f"Hearth in-process trace: {args.what}", [".venv/bin/python", "bench/trace.py", *(argv or sys.argv[1:])])
    url = database_url(args.database)
    reset_database(url)
    reset_redis()
    if args.what == "inbound":
        trace_inbound(url, args.body, args.count, freeze=not args.no_freeze, profile=args.profile,
                      breakdown=Breakdown() if args.breakdown else None)
    else:
        trace_send(url, args.count, profile=args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
