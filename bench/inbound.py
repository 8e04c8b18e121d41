"""Inbound webhook benchmark: Hearth's POST /twilio/sms against a bare Flask baseline.

    .venv/bin/python bench/inbound.py            # the real figures (about 3 minutes)
    .venv/bin/python bench/inbound.py --quick    # a shorter smoke run

What it does, in one run:

1. Migrates the PostgreSQL database `hearth_bench` afresh (never `test`), adds one community
   and one member, flushes Redis db 14.
2. Starts servers with the same gunicorn settings (gunicorn.conf.py, 2 sync workers or --workers,
   127.0.0.1, no access log):
   Hearth (`service:create_app()`), the baseline bench/baseline_app.py (bare Flask answering
   one-message TwiML), and, as a reference without a goal, bench/floor_app.py (signature check +
   one INSERT + commit: the least a durable webhook does; --no-floor skips it).
3. Pre-signs every request before any timing (real X-Twilio-Signature over PUBLIC_BASE_URL +
   /twilio/sms, a unique MessageSid each, body "hello" from the member: the normal path, no
   state change).
4. Maximum throughput: closed-loop load for several rounds per server, taking turns, with
   `wrk` (apt-get install wrk) or, without it, a multi-process asyncio client. Each round also
   reads from /proc the CPU the server's processes and PostgreSQL's used per request, and the
   share of the machine left idle (a server that leaves it idle waits on something else).
5. Latency: open-loop load paced at half of Hearth's median maximum, latency measured from
   each request's scheduled start (so a stalled server is not hidden), for Hearth and, at the
   same rate, for the baseline. Beside Hearth run a meter of the machine's own stalls (a process
   that sleeps 1 ms at a time and notes each wake-up 20 ms late or more) and the floor at 20 req/s
   (it pays the same commit and little else); the run says how many of Hearth's requests over
   the goal were in flight during a stall of either.
6. Checks every answer was 200 and that Hearth stored one inbound row per answered request.

Goals (the issue): Hearth >= 1/3 of the baseline's throughput; p99 < 50 ms at half Hearth's max.
Exit status 0 when both goals pass, 1 when one fails, 2 when the run itself was invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import (  # noqa: E402
    ACCOUNT_SID, AUTH_TOKEN, BENCH, FROM_NUMBER, MEMBER_PHONE, REPO, VENV_BIN, CpuUse, Processes, Steal, banner,
    database_url, exit_on_sigterm, free_port, hearth_env, make_app, member_phones, percentile, reset_database,
    reset_redis, print_hot_spots, py_spy, hot_spots, save_results, verdict, wait_http, Hiccups, overlapping,
)

THROUGHPUT_RATIO_GOAL = 1 / 3
# The floor's rate beside Hearth in the latency phase (a probe of the commit path; about 2% of a core).
CANARY_RATE = 20.0
P99_GOAL_MS = 50.0
WARM_UP_SECONDS = 2  # per server, closed loop, before any round
# Hearth's production settings (the Procfile's, with its default WEB_CONCURRENCY of 2 unless
# --workers says otherwise), the same for every server in the run.
GUNICORN_SETTINGS = ["--config", "gunicorn.conf.py", "--worker-class", "sync", "--log-level", "warning"]


# -- requests -------------------------------------------------------------------------------------

def signed_requests(count: int, url: str, body: str, tag: int, senders: list[str] | None = None
                    ) -> list[tuple[str, str]]:
    """`count` (signature, urlencoded form) pairs as Twilio would post them, each with its own MessageSid.

    Senders take turns (default: the one member).
    """
    senders = senders or [MEMBER_PHONE]
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    run = uuid.uuid4().hex[:12]
    out = []
    for i in range(count):
        sid = f"SM{run}{tag:04x}{i:016x}"  # 32 hex digits, unique per run, pool and request
        form = {
            "ToCountry": "GB", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": body, "FromCountry": "GB", "To": FROM_NUMBER, "ToZip": "", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": senders[i % len(senders)], "ApiVersion": "2010-04-01",
        }
        out.append((validator.compute_signature(url, form), urlencode(form)))
    return out


def raw_request(port: int, signature: str, form: str) -> bytes:
    """One complete HTTP/1.1 request, ready to write to a socket."""
    data = form.encode()
    return (f"POST /twilio/sms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data


# -- an asyncio HTTP client (no dependencies) -----------------------------------------------------

async def _exchange(port: int, data: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        body = await reader.readexactly(int(match.group(1))) if match else await reader.read()
        return status, body
    finally:
        writer.close()


def fetch(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request, outside any timing."""
    return asyncio.run(asyncio.wait_for(_exchange(port, data), timeout))


def twiml_messages(answer: bytes) -> list[str]:
    """The texts of a TwiML answer's messages, in order."""
    return [message.text or "" for message in ElementTree.fromstring(answer).iter("Message")]


async def _closed_loop(port: int, requests: list[bytes], connections: int, duration: float) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    statuses: dict[str, int] = {}
    position = 0
    wrapped = 0

    async def client() -> None:
        nonlocal position, wrapped
        while loop.time() < deadline:
            if position >= len(requests):
                position, wrapped = 0, wrapped + 1
            data = requests[position]
            position += 1
            try:
                status, _ = await asyncio.wait_for(_exchange(port, data), 10)
                key = str(status)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                key = type(exc).__name__
            if loop.time() <= deadline:
                statuses[key] = statuses.get(key, 0) + 1

    await asyncio.gather(*(client() for _ in range(connections)))
    return {"statuses": statuses, "wrapped": wrapped}


def _closed_loop_process(args: tuple) -> dict:
    port, requests, connections, duration = args
    return asyncio.run(_closed_loop(port, requests, connections, duration))


# -- maximum throughput ---------------------------------------------------------------------------

def run_wrk(port: int, path: Path, duration: float, connections: int, threads: int) -> dict:
    """Closed-loop load with wrk over the pre-signed requests in `path`."""
    env = dict(os.environ, HEARTH_BENCH_REQUESTS=str(path), HEARTH_BENCH_THREADS=str(threads))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "-s", str(BENCH / "inbound.lua"), f"http://127.0.0.1:{port}/twilio/sms"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration + 60)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or out}")
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    seconds = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    wrapped = re.search(r"HEARTH_WRAPPED (\d+)", out)
    count = int(total.group(1))
    return {"requests": count, "seconds": seconds, "rps": count / seconds,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0,
            "wrapped": int(wrapped.group(1)) if wrapped else 0}


def run_python(port: int, requests: list[bytes], duration: float, connections: int, processes: int) -> dict:
    """Closed-loop load with `processes` asyncio processes sharing `connections` connections."""
    per = math.ceil(len(requests) / processes)
    jobs = [(port, requests[i * per:(i + 1) * per], max(1, connections // processes), duration)
            for i in range(processes)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_closed_loop_process, jobs)
    elapsed = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for part in parts:
        for key, n in part["statuses"].items():
            statuses[key] = statuses.get(key, 0) + n
    ok = statuses.get("200", 0)
    count = sum(statuses.values())
    return {"requests": count, "seconds": duration, "rps": count / duration, "elapsed": elapsed,
            "non_2xx": sum(n for k, n in statuses.items() if k.isdigit() and not k.startswith("2")),
            "socket_errors": sum(n for k, n in statuses.items() if not k.isdigit()),
            "wrapped": sum(p["wrapped"] for p in parts), "ok": ok}


# -- open-loop paced latency ----------------------------------------------------------------------

async def _paced(port: int, requests: list[bytes], rate: float, timeout: float) -> dict:
    loop = asyncio.get_running_loop()
    n = len(requests)
    results: list[tuple[float, float, float, str] | None] = [None] * n
    outstanding = 0
    peak = 0

    async def fire(i: int, scheduled: float) -> None:
        nonlocal outstanding
        started = loop.time()
        try:
            status, _ = await asyncio.wait_for(_exchange(port, requests[i]), timeout)
            key = str(status)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            key = type(exc).__name__
        results[i] = (scheduled, started, loop.time(), key)
        outstanding -= 1

    tasks = []
    t0 = loop.time() + 0.1
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        outstanding += 1
        peak = max(peak, outstanding)
        tasks.append(asyncio.create_task(fire(i, scheduled)))
        if outstanding > 2000:  # the server has fallen hopelessly behind: stop adding load
            break
    await asyncio.gather(*tasks)
    done = [r for r in results if r is not None]
    latencies = sorted((end - scheduled) * 1000 for scheduled, _, end, _ in done)
    lags = sorted((started - scheduled) * 1000 for scheduled, started, _, _ in done)
    statuses: dict[str, int] = {}
    for *_, key in done:
        statuses[key] = statuses.get(key, 0) + 1
    span = done[-1][0] - done[0][0] if len(done) > 1 else 0.0
    return {
        "sent": len(done), "offered_rate": rate, "achieved_rate": (len(done) - 1) / span if span else 0.0,
        "statuses": statuses, "peak_outstanding": peak,
        "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99), "max_ms": latencies[-1] if latencies else float("nan"),
        "client_lag_p99_ms": percentile(lags, 99),
        # Each request's (scheduled start, end), for `slow_spans`; not saved with the figures.
        "spans": [(scheduled, end) for scheduled, _, end, _ in done],
    }


def paced(*runs: tuple[int, list[bytes], float], timeout: float = 10.0) -> list[dict]:
    """Paced runs, each (port, requests, rate), side by side in one event loop, with this client's
    garbage collector held off while they run.

    A full collection here stops the client for tens of milliseconds and every request due in
    that time would count as the server's latency (seen: 15 requests at 60-80 ms in one burst).
    """
    async def together() -> list[dict]:
        return list(await asyncio.gather(*(_paced(port, requests, rate, timeout) for port, requests, rate in runs)))

    gc.collect()
    gc.disable()
    try:
        return asyncio.run(together())
    finally:
        gc.enable()


def slow_spans(result: dict, over_ms: float) -> list[tuple[float, float]]:
    """The (scheduled start, end) of each request in a paced result that took longer than `over_ms`."""
    return [(start, end) for start, end in result["spans"] if (end - start) * 1000 > over_ms]


def stalls_beside(hearth: dict, meter: Hiccups, floor: dict | None) -> list[str]:
    """What the machine and the floor saw while Hearth was paced, and how many of Hearth's requests
    over the goal were in flight during a stall of either (kept in `hearth["slow"]`)."""
    slow = slow_spans(hearth, P99_GOAL_MS)
    hearth["slow"] = found = {"requests": len(slow), "during_machine_stall": overlapping(slow, meter.stalls)}
    lines = [f"beside it, {meter.summary()}"]
    if floor is not None:
        floor_slow = slow_spans(floor, P99_GOAL_MS)
        hearth["floor_beside"] = {key: floor[key] for key in ("offered_rate", "p50_ms", "p99_ms", "max_ms")}
        found.update(during_slow_floor_request=overlapping(slow, floor_slow),
                     during_either=overlapping(slow, meter.stalls + floor_slow))
        lines.append(f"beside it, the floor at {floor['offered_rate']:.0f} req/s: p50 {floor['p50_ms']:.1f} ms, p99"
                     f" {floor['p99_ms']:.1f} ms, max {floor['max_ms']:.1f} ms, {len(floor_slow)} request(s) over"
                     f" {P99_GOAL_MS:.0f} ms")
    lines.append(f"Hearth's requests over {P99_GOAL_MS:.0f} ms: {len(slow)} of {hearth['sent']}; in flight during a"
                 f" machine stall: {found['during_machine_stall']}"
                 + (f"; during a slow floor request: {found['during_slow_floor_request']}; during either:"
                    f" {found['during_either']}" if floor is not None else ""))
    return lines


# -- servers --------------------------------------------------------------------------------------

def start_gunicorn(procs: Processes, name: str, app: str, port: int, env: dict[str, str], workers: int,
                   extra: list[str] | None = None):
    argv = [str(VENV_BIN / "gunicorn"), *GUNICORN_SETTINGS, "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
            *(extra or []), app]
    proc = procs.start(name, argv, env)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
    return proc


def seed(url: str, phones: list[str]) -> None:
    from service.database import db
    from service.directory import add_member, create_community

    app = make_app(url)
    with app.app_context():
        community = create_community(db.session, "Bench House", "Europe/London", phone_number=FROM_NUMBER,
                                     quiet_hours="off")  # it runs on the wall clock, at any hour
        for i, phone in enumerate(phones):
            add_member(db.session, community, f"Member {i + 1}", phone, welcome=False)
        db.session.commit()
    app.extensions["hearth_db"].engine.dispose()


def make_floor_table(url: str) -> None:
    """The table bench/floor_app.py writes to: inbound_messages' columns and indexes, no foreign keys."""
    from sqlalchemy import text

    from service.database import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE bench_floor (id serial PRIMARY KEY, sid varchar(64) NOT NULL UNIQUE, community_id integer,"
            " member_id integer, from_number varchar(32) NOT NULL, to_number varchar(32) NOT NULL, body text NOT NULL,"
            " handled_as varchar(32) NOT NULL, response text NOT NULL, received_at timestamptz NOT NULL);"
            " CREATE INDEX ix_bench_floor_community_id ON bench_floor (community_id);"
            " CREATE INDEX ix_bench_floor_member_id ON bench_floor (member_id)"))
    engine.dispose()


def inbound_rows(url: str) -> int:
    from sqlalchemy import func, select

    from service.database import make_engine
    from service.models import InboundMessage

    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(InboundMessage))
    engine.dispose()
    return n


# -- the run --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (a smoke run, not the figures)")
    parser.add_argument("--rounds", type=int, help="closed-loop rounds per server (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per closed-loop round (default 10; quick 5)")
    parser.add_argument("--latency-seconds", type=float, help="seconds of paced load (default 30; quick 10)")
    parser.add_argument("--connections", type=int, default=8, help="closed-loop connections (default 8)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="closed-loop load generator (auto: wrk when installed)")
    parser.add_argument("--body", default="hello", help="the member's message (default: hello)")
    parser.add_argument("--members", type=int, default=1,
                        help="members texting in turn (default 1, as the issue asks; more shows row-lock effects)")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--max-rps", type=int, default=3000,
                        help="pre-signed requests per second of a round (a bound; default 3000)")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the reference server bench/floor_app.py (signature check + one INSERT)")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, one extra Hearth round under py-spy (not counted); prints hot spots")
    parser.add_argument("--latency-rate", type=float,
                        help="pace the latency phase at this many req/s rather than half Hearth's maximum"
                             " (to compare two trees at one rate; the goal is judged at half the maximum)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers for every server (default 2, the Procfile's WEB_CONCURRENCY default)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (5.0 if args.quick else 10.0)
    latency_seconds = args.latency_seconds or (10.0 if args.quick else 30.0)
    if not 1 <= rounds <= 10 or not 1 <= duration <= 60 or not 1 <= latency_seconds <= 120:
        parser.error("keep --rounds in 1..10, --duration in 1..60 and --latency-seconds in 1..120")

    exit_on_sigterm()
    run_steal = Steal()
    meta = banner("Hearth inbound webhook benchmark", [".venv/bin/python", "bench/inbound.py", *(argv or sys.argv[1:])])
    client = args.client
    if client in ("auto", "wrk") and shutil.which("wrk") is None:
        if client == "wrk":
            print("wrk is not installed: apt-get install wrk (or run with --client python)")
            return 2
        print("wrk is not installed (apt-get install wrk); using the built-in asyncio client,"
              " which costs more CPU on the shared cores")
        client = "python"
    elif client == "auto":
        client = "wrk"
    print(f"load generator: {client}; closed loop with {args.connections} connections;"
          f" gunicorn {' '.join(GUNICORN_SETTINGS)} --workers {args.workers} (no access log) for every server")
    floor = not args.no_floor and args.database == "postgres"

    url = database_url(args.database)
    phones = member_phones(args.members)
    reset_database(url)
    reset_redis()
    seed(url, phones)
    if floor:
        make_floor_table(url)
    hearth_port, base_port, floor_port = free_port(), free_port(), free_port()
    public = f"http://127.0.0.1:{hearth_port}"
    sign_url = public + "/twilio/sms"

    # Every request is signed before any timing.
    t = time.perf_counter()
    per_round = int(args.max_rps * duration)
    warm = signed_requests(WARM_UP_SECONDS * args.max_rps, sign_url, args.body, 1, phones)
    pools = [signed_requests(per_round, sign_url, args.body, 16 + i, phones) for i in range(rounds)]
    floor_pools = ([signed_requests(per_round, sign_url, args.body, 48 + i, phones) for i in range(rounds)]
                   if floor else [])
    profile_pool = signed_requests(per_round, sign_url, args.body, 2, phones) if args.profile else []
    # Paced pools are sized once Hearth's maximum is known, but signed before the paced phase starts.
    print(f"pre-signed {len(warm) + per_round * (rounds + len(floor_pools)) + len(profile_pool)} requests"
          f" in {time.perf_counter() - t:.1f}s"
          f" (unique MessageSid each; body {args.body!r} from {args.members} member(s) in turn)")

    tmp = Path(tempfile.mkdtemp(prefix="hearth-inbound-"))
    files: dict[str, list[Path]] = {"hearth": [], "floor": []}
    for name, name_pools in (("hearth", pools), ("floor", floor_pools)):
        for i, pool in enumerate(name_pools):
            path = tmp / f"{name}-round{i}.tsv"
            path.write_text("".join(f"{sig}\t{form}\n" for sig, form in pool))
            files[name].append(path)
    files["baseline"] = files["hearth"]  # the baseline keeps no state: any signed request will do
    request_pools = {"hearth": pools, "baseline": pools, "floor": floor_pools}

    results: dict = {**meta, "client": client, "members": args.members, "body": args.body,
                     "connections": args.connections, "rounds": rounds, "duration": duration,
                     "database": args.database, "floor": floor}
    invalid: list[str] = []
    sent_to_hearth_ok = 0
    with Processes(tmp / "logs") as procs:
        env = hearth_env(DATABASE_URL=url, PUBLIC_BASE_URL=public, TWILIO_API_BASE="http://127.0.0.1:9")
        hearth = start_gunicorn(procs, "hearth-web", "service:create_app()", hearth_port, env, args.workers)
        # The baseline and the floor answer with the same TwiML as Hearth: the messages it answers with.
        _, hearth_answer = fetch(hearth_port, raw_request(hearth_port, *warm[0]))
        env = {**env, "BENCH_REPLIES": json.dumps(twiml_messages(hearth_answer))}
        baseline = start_gunicorn(procs, "baseline-web", "baseline_app:app", base_port, env, args.workers,
                                  ["--pythonpath", str(BENCH)])
        servers = [("hearth", hearth_port), ("baseline", base_port)]
        groups = {"hearth": hearth.pid, "baseline": baseline.pid}  # each server's process group
        if floor:
            groups["floor"] = start_gunicorn(procs, "floor-web", "floor_app:app", floor_port, env, args.workers,
                                             ["--pythonpath", str(BENCH)]).pid
            servers.append(("floor", floor_port))

        # The answers (outside timing), and a warm-up for each server.
        statuses = {}
        bodies = {}
        for name, port in servers:
            statuses[name], bodies[name] = fetch(port, raw_request(port, *warm[0]))
        sent_to_hearth_ok += statuses["hearth"] == 200
        for name, _ in servers:
            text = bodies[name].decode(errors="replace")
            messages = text.count("<Message>")
            print(f"{name} answers {statuses[name]} with {messages} message(s), {len(bodies[name])} bytes:"
                  f" {text[:300]}")
            if statuses[name] != 200 or "<Response>" not in text:
                invalid.append(f"{name} does not answer TwiML ({statuses[name]})")
            elif bodies[name] != bodies["hearth"]:
                invalid.append(f"{name} does not answer the same TwiML as Hearth")
        results["answers"] = {name: bodies[name].decode(errors="replace") for name in bodies}
        for name, port in servers:
            warm_reqs = [raw_request(port, *w) for w in warm[1:]]
            r = run_python(port, warm_reqs, WARM_UP_SECONDS, args.connections, 1)
            if name == "hearth":
                if r["wrapped"]:
                    invalid.append("hearth's warm-up ran out of pre-signed requests (raise --max-rps)")
                sent_to_hearth_ok += r["ok"]
        print()

        # Maximum throughput, alternating servers so drift hits both alike.
        rps: dict[str, list[float]] = {name: [] for name, _ in servers}
        rounds_out = []
        print(f"maximum throughput: {rounds} round(s) of {duration:.0f}s per server")
        for i in range(rounds):
            for name, port in servers:
                round_steal, cpu = Steal(), CpuUse(groups[name])
                if client == "wrk":
                    r = run_wrk(port, files[name][i], duration, args.connections, 2)
                else:
                    r = run_python(port, [raw_request(port, *p) for p in request_pools[name][i]], duration,
                                   args.connections, 2)
                r.update(server=name, round=i + 1, steal=round_steal.share(), idle=round_steal.idle_share())
                server_cpu, database_cpu = cpu.since()
                r.update(cpu_ms=server_cpu / max(1, r["requests"]) * 1000,
                         database_cpu_ms=database_cpu / max(1, r["requests"]) * 1000)
                rounds_out.append(r)
                bad = r["non_2xx"] + r["socket_errors"]
                if name == "hearth":
                    sent_to_hearth_ok += r["requests"] - r["non_2xx"]
                if name != "baseline":
                    if r["wrapped"]:
                        invalid.append(f"{name} round {i + 1} ran out of pre-signed requests (raise --max-rps)")
                if bad:
                    invalid.append(f"{name} round {i + 1}: {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors")
                rps[name].append(r["rps"])
                print(f"  round {i + 1} {name:8s} {r['rps']:8.1f} req/s  ({r['requests']} requests,"
                      f" {r['non_2xx']} non-2xx, {r['socket_errors']} socket errors; {r['steal']:.0%} stolen,"
                      f" {r['idle']:.0%} idle; CPU per request {r['cpu_ms']:.2f} ms server,"
                      f" {r['database_cpu_ms']:.2f} ms PostgreSQL)")
        hearth_max = statistics.median(rps["hearth"])
        base_max = statistics.median(rps["baseline"])
        ratio = hearth_max / base_max
        throughput_ok = ratio >= THROUGHPUT_RATIO_GOAL
        floor_max = statistics.median(rps["floor"]) if floor else None
        results["throughput"] = {"rounds": rounds_out, "hearth_rps": hearth_max, "baseline_rps": base_max,
                                 "floor_rps": floor_max, "ratio": ratio, "goal": ">= 1/3", "pass": throughput_ok}
        print()

        # Latency at half of Hearth's maximum, open loop.
        rate = args.latency_rate or hearth_max / 2
        count = max(10, int(rate * latency_seconds))
        pace_note = "as given" if args.latency_rate else "half Hearth's maximum"
        print(f"latency: open-loop at {rate:.1f} req/s ({pace_note}) for {latency_seconds:.0f}s"
              f" ({count} requests), measured from each request's scheduled start")
        hearth_paced = [raw_request(hearth_port, *p) for p in signed_requests(count, sign_url, args.body, 3, phones)]
        base_paced = [raw_request(base_port, *p) for p in signed_requests(count, sign_url, args.body, 4, phones)]
        # Alongside Hearth: a meter of the machine's own stalls, and the floor paced at a low rate,
        # which pays the same commit as Hearth and little else. A slow Hearth request that was in
        # flight during either's stall waited on the machine or its disk, not on Hearth's code.
        canary = ([raw_request(floor_port, *p) for p in
                   signed_requests(max(10, int(CANARY_RATE * latency_seconds)), sign_url, args.body, 5, phones)]
                  if floor else [])
        lat = {}
        for name, port, reqs in (("hearth", hearth_port, hearth_paced), ("baseline", base_port, base_paced)):
            phase_steal = Steal()
            alongside = [(floor_port, canary, CANARY_RATE)] if name == "hearth" and canary else []
            with Hiccups() as meter:
                r, *beside = paced((port, reqs, rate), *alongside)
            lat[name] = r
            r["steal"] = phase_steal.share()
            r["machine_stalls"] = meter.stalls
            if name == "hearth":
                sent_to_hearth_ok += r["statuses"].get("200", 0)
            if set(r["statuses"]) != {"200"}:
                invalid.append(f"{name} paced: answers {r['statuses']}")
            print(f"  {name:8s} p50 {r['p50_ms']:6.1f} ms  p90 {r['p90_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
                  f"  max {r['max_ms']:6.1f} ms  (achieved {r['achieved_rate']:.1f} req/s, {r['sent']} requests,"
                  f" client lag p99 {r['client_lag_p99_ms']:.1f} ms; {r['steal']:.0%} stolen)")
            if name == "hearth":
                print("\n".join(f"    {line}" for line in stalls_beside(r, meter, beside[0] if beside else None)))
        for r in lat.values():
            r.pop("spans")
        latency_ok = lat["hearth"]["p99_ms"] < P99_GOAL_MS
        results["latency"] = {**lat, "rate": rate, "goal_p99_ms": P99_GOAL_MS, "pass": latency_ok}

        if args.profile:
            results["profile"] = profile_round(procs, hearth, hearth_port, profile_pool, duration,
                                               args.connections, tmp)

        procs.stop_all()

    # Hearth really did the work: one inbound row per answered request (a few more may be
    # committed for requests in flight when a round's clock ran out).
    rows = inbound_rows(url)
    slack = args.connections * (rounds + 2)
    results["inbound_rows"] = rows
    results["answered_200"] = sent_to_hearth_ok
    if not 0 <= rows - sent_to_hearth_ok <= slack + (len(profile_pool) if args.profile else 0):
        invalid.append(f"database holds {rows} inbound rows for {sent_to_hearth_ok} answered requests")

    print()
    print("== summary ==")
    print(f"maximum throughput  hearth {hearth_max:.0f} req/s, baseline {base_max:.0f} req/s:"
          f" ratio {ratio:.2f} (goal >= 0.33)  {verdict(throughput_ok)}")
    print(f"latency at {rate:.0f} req/s  hearth p50 {lat['hearth']['p50_ms']:.1f} ms, p99"
          f" {lat['hearth']['p99_ms']:.1f} ms (goal p99 < {P99_GOAL_MS:.0f} ms)  {verdict(latency_ok)}"
          + ("  (at the rate given, not half the maximum: not the goal's test)" if args.latency_rate else ""))
    print(f"                     baseline p50 {lat['baseline']['p50_ms']:.1f} ms, p99"
          f" {lat['baseline']['p99_ms']:.1f} ms (reference)")
    if floor_max:
        print(f"reference (no goal)  floor (signature + one INSERT + commit) {floor_max:.0f} req/s:"
              f" {floor_max / base_max:.2f} of the baseline; Hearth is {hearth_max / floor_max:.2f} of the floor")
    costs = {name: [(r["cpu_ms"], r["database_cpu_ms"]) for r in results["throughput"]["rounds"]
                     if r["server"] == name] for name, _ in (("hearth", 0), ("floor", 0), ("baseline", 0))}
    print("CPU per request (median of the rounds), the server's processes; PostgreSQL's: " + "; ".join(
        f"{name} {statistics.median(c for c, _ in pairs):.2f} ms; {statistics.median(d for _, d in pairs):.2f} ms"
        for name, pairs in costs.items() if pairs))
    print(f"check: {rows} inbound rows stored for {sent_to_hearth_ok} answered requests")
    results["steal"] = run_steal.share()
    print(run_steal.note())
    for problem in invalid:
        print(f"INVALID: {problem}")
    results["invalid"] = invalid
    print(f"results: {save_results('inbound', results).relative_to(REPO)}")
    shutil.rmtree(tmp, ignore_errors=True)
    if invalid:
        return 2
    return 0 if throughput_ok and latency_ok else 1


# -- profiling ------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def profile_round(procs: Processes, hearth, port: int, pool, duration: float, connections: int, tmp: Path) -> dict:
    """One closed-loop round with py-spy sampling each Hearth worker; prints where the time goes."""
    workers = _children(hearth.pid)
    outs = [tmp / f"pyspy-{pid}.txt" for pid in workers]
    spies = [py_spy(pid, duration, out) for pid, out in zip(workers, outs)]
    if not all(spies):
        print("profile: py-spy is not installed (pip install py-spy); skipped")
        return {"skipped": "py-spy not installed"}
    time.sleep(1.0)
    r = run_python(port, [raw_request(port, *p) for p in pool], duration - 1.5, connections, 1)
    for spy in spies:
        try:
            spy.wait(duration + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
    spots = hot_spots(outs, top=25)
    print(f"\nprofile: py-spy on {len(workers)} Hearth workers during a {r['rps']:.0f} req/s round"
          " (not counted in the figures); share of busy samples by deepest Hearth frame:")
    print_hot_spots("", spots)
    return {"hot_spots": spots}


if __name__ == "__main__":
    sys.exit(main())
