"""Sending benchmark: one worker's messages/s to the Twilio double, and the send rate limit's accuracy.

    .venv/bin/python bench/send.py               # the real figures (about 2.5 minutes)
    .venv/bin/python bench/send.py --quick       # a shorter smoke run
    .venv/bin/python bench/send.py --database sqlite

(a) Throughput: N outbox rows (kind "broadcast", queue "bulk") are queued through
    service.outbox.queue_message and committed, which enqueues N RQ jobs; then ONE worker
    started as the Procfile starts it (`rq worker --with-scheduler --worker-class
    workers.runtime.Worker --serializer rq.serializers.JSONSerializer ... crisis replies bulk`)
    with HEARTH_SEND_RATE=0 sends them through the real twilio SDK to the project's Twilio double
    (service.twilio_double, in this process, status callbacks off). Rate = messages accepted by
    the double / time from its first to its last accepted message. Goal >= 100/s.

(b) Rate limit: HEARTH_SEND_RATE=10 and TWO workers (the limit lives in Redis, so it must hold
    across processes), with rows queued for longer than the window. From the double's receive
    timestamps: the rate over a steady 60 s window (goal 9.5-10.0/s) and the most messages in
    any one-second window, a window starting at every receive time (goal never more than 11).

(c) Reference, no goal: the same worker draining as many no-op jobs (enqueued with the send
    jobs' options): RQ's own cost per job, which (a) pays on top of Hearth's work.

(d) An alert behind a broadcast, no goal: ONE worker (as the Procfile runs) at HEARTH_SEND_RATE=10
    sends a broadcast in batches of 25; while it does, alerts to a facilitator are queued one at
    a time (kind "alert", the crisis queue) and timed from their commit to the double receiving
    them. Then the same with FOUR workers sending the broadcast, where the alert's worker meets
    three others waiting for the rate limit's next turn. The baseline, in the same run: the same
    alerts with nothing else queued.

Uses PostgreSQL database `hearth_bench` (or SQLite with --database sqlite) and Redis db 14,
both wiped first. Exit status 0 when every goal passes, 1 when one fails, 2 when the run was invalid.
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, REDIS_URL, REPO, VENV_BIN, Processes, Steal, banner, database_url,
    exit_on_sigterm, hearth_env, hot_spots, make_app, member_phones, percentile, print_hot_spots, py_spy,
    reset_database,
    reset_redis, save_results, verdict,
)

THROUGHPUT_GOAL = 100.0
RATE = 10
RATE_WINDOW_GOAL = (9.5, 10.0)
MAX_PER_SECOND_GOAL = 11
WORKER_ARGV = [str(VENV_BIN / "rq"), "worker", "--with-scheduler", "--worker-class", "workers.runtime.Worker",
               "--serializer", "rq.serializers.JSONSerializer", "--url", REDIS_URL, "crisis", "replies", "bulk"]
BODY = ("Bench House: community meeting moved to Thursday 6pm in the big room. "
        "Reply HELP for help or STOP to stop.")  # GSM-7, one segment


def prepare(url: str, members: int, rows: int) -> dict:
    """A fresh database and Redis, `members` members, and `rows` broadcast rows queued (and enqueued)."""
    from redis import Redis
    from sqlalchemy import select

    from service.database import db
    from service.directory import add_member, create_community
    from service.models import Member
    from service.outbox import queue_message
    from workers.queues import queue

    reset_database(url)
    reset_redis()
    app = make_app(url)
    run = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    with app.app_context():
        community = create_community(db.session, "Bench House", "Europe/London", phone_number=FROM_NUMBER,
                                     quiet_hours="off")  # it runs on the wall clock, at any hour
        for i, phone in enumerate(member_phones(members)):
            add_member(db.session, community, f"Member {i + 1}", phone, welcome=False)
        db.session.commit()
        people = db.session.scalars(select(Member).order_by(Member.id)).all()
        for i in range(rows):
            member = people[i % len(people)]
            queue_message(db.session, key=f"bench:{run}:{i}", to=member.phone, body=BODY, kind="broadcast",
                          member=member)
        db.session.commit()  # the after-commit hook enqueues one send job per row on "bulk"
    redis = Redis.from_url(REDIS_URL)
    queued = queue("bulk", redis).count
    redis.close()
    app.extensions["hearth_db"].engine.dispose()
    return {"rows": rows, "jobs_queued": queued, "seconds": time.perf_counter() - started}


def outbox_states(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from service.database import make_engine
    from service.models import OutboundMessage

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)).all()
    engine.dispose()
    return {state: n for state, n in rows}


def accepted_times(double) -> list[float]:
    """Receive times of the requests the double accepted (201), sorted."""
    return sorted(r["time"] for r in double.requests if r["status"] == 201)


def jobs_done(procs: Processes, proc) -> int:
    """How many jobs a worker's log says it finished."""
    path = procs.log_dir / f"{proc.bench_name}.log"
    try:
        return sum(1 for line in path.read_text(errors="replace").splitlines() if "Job OK" in line)
    except OSError:
        return 0


def worker_env(url: str, double, rate: float) -> dict[str, str]:
    return hearth_env(DATABASE_URL=url, TWILIO_API_BASE=double.url, HEARTH_SEND_RATE=str(rate))


def throughput(url: str, double, procs: Processes, rows: int, members: int, timeout: float,
               profile: Path | None = None) -> dict:
    print(f"(a) throughput: {rows} outbox rows to {members} members, ONE worker, HEARTH_SEND_RATE=0"
          + (" -- under py-spy, not counted" if profile else ""))
    prep = prepare(url, members, rows)
    print(f"    queued {prep['rows']} rows, {prep['jobs_queued']} jobs on 'bulk' in {prep['seconds']:.1f}s")
    double.reset()
    started = time.time()
    worker = procs.start("worker-a" + ("-profiled" if profile else ""), WORKER_ARGV, worker_env(url, double, 0))
    spy = None
    if profile:
        time.sleep(1.5)  # past start-up
        spy = py_spy(worker.pid, max(2.0, rows / 150), profile, idle=True)
        if spy is None:
            print("    py-spy is not installed (pip install py-spy): no profile")
    deadline = time.monotonic() + timeout
    while double.counts["messages"] < rows and time.monotonic() < deadline:
        if worker.poll() is not None:
            break
        time.sleep(0.2)
    time.sleep(0.5)  # a straggler or a duplicate would show up here
    times = accepted_times(double)
    if spy is not None:
        spy.wait(60)
    exited = worker.poll()
    procs.stop(worker)
    states = outbox_states(url)
    n = len(times)
    span = times[-1] - times[0] if n > 1 else 0.0
    rate = (n - 1) / span if span else 0.0
    problems = []
    if exited is not None:
        problems.append(f"the worker exited early with {exited}; its log ends:\n{procs.log_tail(worker, 15)}")
    if n != rows:
        problems.append(f"the double accepted {n} messages for {rows} rows")
    if states.get("sent", 0) != rows:
        problems.append(f"outbox states {states}, expected {rows} sent")
    if len({r["sid"] for r in double.requests if r["status"] == 201}) != n:
        problems.append("duplicate message sids")
    out = {"rows": rows, "members": members, "accepted": n, "seconds": span, "rate": rate,
           "startup_seconds": (times[0] - started) if times else None, "outbox_states": states,
           "ms_per_message": 1000 / rate if rate else None, "goal": f">= {THROUGHPUT_GOAL:.0f}/s",
           "pass": rate >= THROUGHPUT_GOAL and not problems, "problems": problems}
    print(f"    {n} messages accepted in {span:.2f}s from first to last: {rate:.1f} msg/s"
          f" ({out['ms_per_message'] or 0:.1f} ms each; worker start to first send"
          f" {out['startup_seconds'] or 0:.1f}s); outbox {states}")
    for problem in problems:
        print(f"    INVALID: {problem}")
    if spy is not None:
        out["hot_spots"] = hot_spots([profile], top=25)
        print_hot_spots("wall-clock share of the worker's main thread, by deepest Hearth frame (--idle):",
                        out["hot_spots"])
    return out


def rq_ceiling(url: str, procs: Processes, jobs: int) -> dict:
    """Reference, no goal: how fast ONE worker (the Procfile's command) drains no-op jobs enqueued with
    the same options as Hearth's send jobs; what RQ itself costs per job on this machine."""
    from redis import Redis
    from rq import Retry

    from workers.queues import JOB_TIMEOUT, SEND_RETRY_INTERVALS, queue

    print(f"(c) reference: {jobs} no-op jobs (os.getpid) with send-job options, ONE worker")
    reset_redis()
    redis = Redis.from_url(REDIS_URL)
    bulk = queue("bulk", redis)
    for i in range(jobs):
        bulk.enqueue("os.getpid", job_id=f"noop-{i}", unique=True,
                     retry=Retry(max=len(SEND_RETRY_INTERVALS), interval=SEND_RETRY_INTERVALS),
                     job_timeout=JOB_TIMEOUT, result_ttl=0, failure_ttl=7 * 86400)
    # The worker checks its settings before it takes a job: the run's database, which no-op jobs never touch.
    worker = procs.start("worker-c", WORKER_ARGV, hearth_env(DATABASE_URL=url))
    first = last = None
    deadline = time.monotonic() + 60 + jobs / 50
    while time.monotonic() < deadline and worker.poll() is None:
        left = bulk.count
        if first is None and left < jobs:
            first = time.monotonic()
        if left == 0:
            last = time.monotonic()
            break
        time.sleep(0.005)
    procs.stop(worker)
    redis.close()
    if first is None or last is None or last <= first:
        print("    INVALID: the worker did not drain the queue")
        return {"jobs": jobs, "problems": ["the worker did not drain the queue"]}
    rate = (jobs - 1) / (last - first)
    print(f"    {rate:.0f} jobs/s ({1000 / rate:.2f} ms of RQ per job, before any Hearth work)")
    return {"jobs": jobs, "seconds": last - first, "rate": rate, "ms_per_job": 1000 / rate}


ALERTS = 12
# Seconds between one alert's arrival and the next alert: drawn (seeded) from this range, as a fixed
# pause would lock onto the batches' rhythm (2.5 s at 10/s) and time every alert at the same point of one.
ALERT_SPACING = (1.0, 4.0)
BROADCAST_WORKERS = 4


def alert_latency(url: str, double, procs: Processes, members: int) -> dict:
    """(d): seconds from an alert's commit to the double, with the worker idle and behind a broadcast."""
    from sqlalchemy import text

    from service.database import db
    from service.outbox import queue_message

    rows = int(RATE * (ALERT_SPACING[1] * (ALERTS + 1) + 10))
    print(f"(d) alert latency: HEARTH_SEND_RATE={RATE}; {ALERTS} alerts queued one at a time,"
          f" {ALERT_SPACING[0]:.0f}-{ALERT_SPACING[1]:.0f}s apart, with nothing else queued (one worker) and"
          f" behind a {rows}-message broadcast (one worker, then {BROADCAST_WORKERS})")
    out: dict = {"alerts": ALERTS, "broadcast_rows": rows, "problems": []}
    for label, broadcast, count in (("idle", 0, 1), ("broadcast", rows, 1),
                                    (f"broadcast, {BROADCAST_WORKERS} workers", rows, BROADCAST_WORKERS)):
        prep = prepare(url, members, broadcast)
        if broadcast:
            print(f"    the broadcast: {prep['rows']} rows, {prep['jobs_queued']} jobs on 'bulk'")
        double.reset()
        app = make_app(url)
        workers = [procs.start(f"worker-d-{label}-{n}", WORKER_ARGV, worker_env(url, double, RATE))
                   for n in range(count)]
        latencies = []
        with app.app_context():
            community_id = db.session.execute(text("SELECT id FROM communities")).scalar_one()

            def alert(name: str, timeout: float = 30.0) -> float | None:
                started = time.time()
                queue_message(db.session, key=f"bench-alert:{label}:{name}", to="+447700900999",
                              body=f"alert {label} {name}", kind="alert", community_id=community_id)
                db.session.commit()  # the after-commit hook puts its job on the crisis queue
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and all(w.poll() is None for w in workers):
                    got = [r["time"] for r in double.requests
                           if r["status"] == 201 and r.get("params", {}).get("Body") == f"alert {label} {name}"]
                    if got:
                        return got[0] - started
                    time.sleep(0.002)
                return None

            if alert("warm-up", timeout=60) is None:  # the worker is up (and, behind a broadcast, sending)
                out["problems"].append(f"{label}: the warm-up alert did not arrive")
            else:
                pauses = random.Random(7)
                for i in range(ALERTS):
                    time.sleep(pauses.uniform(*ALERT_SPACING))
                    latencies.append(alert(str(i)))
            sent_meanwhile = sum(1 for r in double.requests if r["status"] == 201) - len(latencies) - 1
        for worker in workers:
            procs.stop(worker)
        app.extensions["hearth_db"].engine.dispose()
        if None in latencies:
            out["problems"].append(f"{label}: an alert did not arrive within 30s")
        if broadcast and sent_meanwhile < RATE * ALERT_SPACING[0] * ALERTS:
            out["problems"].append(f"{label}: only {sent_meanwhile} broadcast messages went meanwhile")
        known = sorted(x for x in latencies if x is not None)
        out[label] = {"latencies": latencies, "p50": percentile(known, 50), "max": known[-1] if known else None,
                      "broadcast_sent": sent_meanwhile}
        print(f"    {label:21s}: alert latency p50 {out[label]['p50'] * 1000:.0f} ms, max"
              f" {(out[label]['max'] or 0) * 1000:.0f} ms"
              + (f" ({sent_meanwhile} broadcast messages went meanwhile)" if broadcast else ""))
    for problem in out["problems"]:
        print(f"    INVALID: {problem}")
    return out


def max_in_window(times: list[float], width: float = 1.0) -> tuple[int, float | None]:
    """The most timestamps in [t, t + width) over every t in `times`, and where that window starts."""
    best, at = 0, None
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + width, lo=i) - i
        if n > best:
            best, at = n, t
    return best, at


def rate_limit(url: str, double, procs: Processes, window: float, warmup: float, workers: int,
               members: int) -> dict:
    rows = int(RATE * (warmup + window + 15))
    print(f"(b) rate limit: HEARTH_SEND_RATE={RATE}, {workers} workers, {rows} rows;"
          f" steady window {window:.0f}s after {warmup:.0f}s warm-up")
    prep = prepare(url, members, rows)
    print(f"    queued {prep['rows']} rows, {prep['jobs_queued']} jobs on 'bulk' in {prep['seconds']:.1f}s")
    double.reset()
    procs_ = [procs.start(f"worker-b{i + 1}", WORKER_ARGV, worker_env(url, double, RATE)) for i in range(workers)]
    deadline = time.monotonic() + 60
    while double.counts["messages"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    first = accepted_times(double)
    if not first:
        for p in procs_:
            procs.stop(p)
        raise RuntimeError("no message reached the double within 60s; see the worker logs")
    t0 = first[0]
    window_start, window_end = t0 + warmup, t0 + warmup + window
    while time.time() < window_end + 1.0 and time.monotonic() < deadline + window + warmup + 30:
        if all(p.poll() is not None for p in procs_):
            break
        time.sleep(0.2)
    times = accepted_times(double)
    per_worker = [jobs_done(procs, p) for p in procs_]
    for p in procs_:
        procs.stop(p)
    in_window = [t for t in times if window_start <= t < window_end]
    window_rate = len(in_window) / window
    worst, worst_at = max_in_window(times)
    worst_window, _ = max_in_window(in_window)
    over = sum(1 for i, t in enumerate(times) if bisect.bisect_left(times, t + 1.0, lo=i) - i > RATE)
    burst_100ms, _ = max_in_window(in_window, 0.1)
    # Span of RATE + 1 consecutive messages: under 1 s means RATE + 1 arrived within one second.
    spans = sorted(b - a for a, b in zip(times, times[RATE:]))
    gaps = [b - a for a, b in zip(times, times[1:])]
    problems = []
    if times[-1] < window_end - 1:
        problems.append(f"messages stopped {window_end - times[-1]:.1f}s before the window's end (too few rows?)")
    if workers > 1 and min(per_worker) == 0:
        problems.append(f"a worker sent nothing (jobs per worker {per_worker}): the test of sharing is void")
    lo, hi = RATE_WINDOW_GOAL
    rate_ok = lo <= window_rate <= hi
    burst_ok = worst <= MAX_PER_SECOND_GOAL
    out = {"rate": RATE, "workers": workers, "rows": rows, "accepted": len(times), "window_seconds": window,
           "warmup_seconds": warmup, "in_window": len(in_window), "window_rate": window_rate,
           "max_in_any_second": worst, "max_in_any_second_at": (worst_at - t0) if worst_at else None,
           "max_in_any_second_in_window": worst_window, "jobs_per_worker": per_worker,
           "largest_gap_seconds": max(gaps) if gaps else None, "windows_over_rate": over,
           "max_in_any_100ms_in_window": burst_100ms,
           "span_of_11_min_s": spans[0] if spans else None,
           "span_of_11_p50_s": spans[len(spans) // 2] if spans else None,
           "receive_times": [round(t - t0, 4) for t in times],
           "goal_rate": f"{lo}-{hi}/s", "goal_max_per_second": f"<= {MAX_PER_SECOND_GOAL}",
           "pass_rate": rate_ok and not problems, "pass_burst": burst_ok and not problems, "problems": problems}
    print(f"    {len(times)} messages in all; {len(in_window)} in the {window:.0f}s window: {window_rate:.2f} msg/s"
          f" (goal {lo}-{hi})  {verdict(rate_ok)}")
    print(f"    most in any 1s window: {worst} (at +{out['max_in_any_second_at'] or 0:.2f}s; in the steady window"
          f" {worst_window}) (goal <= {MAX_PER_SECOND_GOAL})  {verdict(burst_ok)}")
    print(f"    1s windows (one from each message) holding more than {RATE}: {over} of {len(times)};"
          f" most in any 100 ms: {burst_100ms}; largest gap {out['largest_gap_seconds'] or 0:.3f}s")
    if spans:
        print(f"    time spanned by {RATE + 1} consecutive messages: min {spans[0] * 1000:.1f} ms,"
              f" median {spans[len(spans) // 2] * 1000:.1f} ms (under 1000 ms means {RATE + 1} in one second)")
    print(f"    jobs per worker {per_worker}")
    for problem in problems:
        print(f"    INVALID: {problem}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke run, not the figures)")
    parser.add_argument("--messages", type=int, help="rows for (a) (default 2000; quick 300)")
    parser.add_argument("--window", type=float, help="steady window of (b) in seconds (default 60; quick 15)")
    parser.add_argument("--workers", type=int, default=2, help="workers for (b) (default 2)")
    parser.add_argument("--members", type=int, default=100, help="members the rows go to (default 100)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--only", choices=("throughput", "ratelimit", "rq", "alerts"), help="run one part")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, one more (a) run under py-spy (not counted); prints where the time goes")
    args = parser.parse_args(argv)
    rows = args.messages or (300 if args.quick else 2000)
    window = args.window or (15.0 if args.quick else 60.0)
    warmup = 3.0
    if not 10 <= rows <= 20000 or not 5 <= window <= 300 or not 1 <= args.workers <= 8:
        parser.error("keep --messages in 10..20000, --window in 5..300 and --workers in 1..8")

    exit_on_sigterm()
    run_steal = Steal()
    meta = banner("Hearth sending benchmark", [".venv/bin/python", "bench/send.py", *(argv or sys.argv[1:])])
    from service.twilio_double import TwilioDouble

    url = database_url(args.database)
    results: dict = {**meta, "database": args.database}
    double = TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False).start()
    print(f"Twilio double (in this process, status callbacks off): {double.url}")
    print(f"worker: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(WORKER_ARGV))}\n")
    logs = Path(f"/tmp/hearth-bench-send-{uuid.uuid4().hex[:6]}")
    try:
        with Processes(logs) as procs:
            if args.only in (None, "throughput"):
                results["throughput"] = throughput(url, double, procs, rows, args.members,
                                                   timeout=60 + rows / 20)
                print()
            if args.only in (None, "ratelimit"):
                results["rate_limit"] = rate_limit(url, double, procs, window, warmup, args.workers, args.members)
                print()
            if args.only in (None, "rq"):
                results["rq_ceiling"] = rq_ceiling(url, procs, rows)
                print()
            if args.only in (None, "alerts"):
                results["alerts"] = alert_latency(url, double, procs, args.members)
                print()
            if args.profile:
                results["profile"] = throughput(url, double, procs, min(rows, 1500), args.members, timeout=120,
                                                profile=logs / "worker-a.collapsed")
                print()
    finally:
        double.stop()

    results["steal"] = run_steal.share()
    print("== summary ==")
    print(run_steal.note())
    ok = True
    invalid = False
    if "throughput" in results:
        a = results["throughput"]
        ok &= a["pass"]
        invalid |= bool(a["problems"])
        print(f"(a) one worker, no limit: {a['rate']:.1f} msg/s over {a['accepted']} messages"
              f" (goal >= {THROUGHPUT_GOAL:.0f})  {verdict(a['pass'])}")
    if "rate_limit" in results:
        b = results["rate_limit"]
        ok &= b["pass_rate"] and b["pass_burst"]
        invalid |= bool(b["problems"])
        print(f"(b) limit {RATE}/s, {b['workers']} workers: {b['window_rate']:.2f} msg/s over"
              f" {b['window_seconds']:.0f}s (goal {RATE_WINDOW_GOAL[0]}-{RATE_WINDOW_GOAL[1]})"
              f"  {verdict(b['pass_rate'])}; most in any second {b['max_in_any_second']}"
              f" (goal <= {MAX_PER_SECOND_GOAL})  {verdict(b['pass_burst'])}")
    if results.get("rq_ceiling", {}).get("rate"):
        c = results["rq_ceiling"]
        print(f"(c) reference, no goal: RQ alone drains {c['rate']:.0f} no-op jobs/s in one worker"
              f" ({c['ms_per_job']:.2f} ms per job)")
    if "alerts" in results:
        d = results["alerts"]
        invalid |= bool(d["problems"])
        if not d["problems"]:
            many = d[f"broadcast, {BROADCAST_WORKERS} workers"]
            print(f"(d) reference, no goal: an alert's latency behind a broadcast p50"
                  f" {d['broadcast']['p50'] * 1000:.0f} ms, max {d['broadcast']['max'] * 1000:.0f} ms"
                  f" (one worker), p50 {many['p50'] * 1000:.0f} ms, max {many['max'] * 1000:.0f} ms"
                  f" ({BROADCAST_WORKERS} workers); with nothing else queued p50 {d['idle']['p50'] * 1000:.0f} ms,"
                  f" max {d['idle']['max'] * 1000:.0f} ms")
    print(f"worker logs: {logs}")
    print(f"results: {save_results('send', results).relative_to(REPO)}")
    if invalid:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
