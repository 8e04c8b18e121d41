"""Shared pieces of the benchmarks: databases, processes, ports, percentiles, machine facts.

Benchmarks never touch the test suite's database (`test`) or Redis db 15: they use the
PostgreSQL database `hearth_bench` (created when missing) and Redis db 14, both wiped at
the start of each run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"  # git-ignored
VENV_BIN = Path(sys.executable).parent

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/hearth_bench"
SQLITE_PATH = Path(os.environ.get("TMPDIR", "/tmp")) / "hearth-bench" / "hearth.db"
REDIS_URL = "redis://127.0.0.1:6379/14"
REFUSED_DATABASES = {"test"}  # the suite truncates it; never benchmark there
REFUSED_REDIS_DBS = {"15"}

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
FROM_NUMBER = "+441632960000"  # the community's Twilio number (Ofcom drama range)
MEMBER_PHONE = "+447700900123"


def member_phones(count: int) -> list[str]:
    """`count` distinct mobile numbers from Ofcom's drama range, MEMBER_PHONE first."""
    if not 1 <= count <= 1000:
        raise SystemExit("between 1 and 1000 members")
    return [f"+447700900{(123 + i) % 1000:03d}" for i in range(count)]


def database_url(kind: str) -> str:
    """The benchmark database: `postgres` (hearth_bench) or `sqlite` (a file under $TMPDIR)."""
    if kind == "postgres":
        return os.environ.get("HEARTH_BENCH_DATABASE_URL", POSTGRES_URL)
    if kind == "sqlite":
        return f"sqlite:///{SQLITE_PATH}"
    raise SystemExit(f"--database must be postgres or sqlite, not {kind!r}")


def reset_database(url: str) -> None:
    """A freshly migrated, empty database at `url` (PostgreSQL: schema dropped; SQLite: file removed)."""
    from sqlalchemy import create_engine, text

    from service.database import make_engine, normalise_url
    from service.migrations import upgrade

    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        name = url.rsplit("/", 1)[-1].split("?", 1)[0]
        if name in REFUSED_DATABASES:
            raise SystemExit(f"refusing to benchmark in database {name!r}: the test suite truncates it")
        admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)


def reset_redis(url: str = REDIS_URL) -> None:
    """Empty the benchmark's Redis database (never the suite's)."""
    from redis import Redis

    if url.rstrip("/").rsplit("/", 1)[-1] in REFUSED_REDIS_DBS:
        raise SystemExit(f"refusing to flush {url}: the test suite uses it")
    conn = Redis.from_url(url)
    conn.flushdb()
    conn.close()


def hearth_env(**extra: str) -> dict[str, str]:
    """The process environment for Hearth's web app or worker; loopback only, no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "HEARTH_")) and k.lower() not in ("http_proxy", "https_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1",
               REDIS_URL=REDIS_URL, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
               TWILIO_FROM_NUMBER=FROM_NUMBER, HEARTH_TRANSPORT="twilio")
    env.update(extra)
    return env


def make_app(url: str, **env: str):
    """An app built from the same environment the processes get (for seeding and enqueueing)."""
    from service import create_app
    from service.config import Config

    return create_app(Config.from_env(hearth_env(DATABASE_URL=url, **env)))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Child processes started by a benchmark, each in its own process group, all stopped on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.Popen:
        base, n = name, 2
        while (self.log_dir / f"{name}.log").exists():  # keep every log of a run
            name, n = f"{base}-{n}", n + 1
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        proc.bench_name = name  # type: ignore[attr-defined]
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        """SIGTERM the group this benchmark started (by its id), then SIGKILL it after `timeout`."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.started)):
            self.stop(proc)

    def log_tail(self, proc: subprocess.Popen, lines: int = 30) -> str:
        path = self.log_dir / f"{proc.bench_name}.log"  # type: ignore[attr-defined]
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    """Wait until `url` answers any HTTP status (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            opener.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), -(-p * len(sorted_values) // 100)))
    return sorted_values[int(rank) - 1]


def machine() -> dict:
    """Facts about this machine worth printing beside every figure."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release()}


def code_state() -> str:
    """The commit measured, and whether service/, flows/ or workers/ had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "service", "flows", "workers"],
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}" + (f" + {len(dirty)} uncommitted file(s) in service/flows/workers" if dirty else "")


def banner(title: str, argv: list[str]) -> dict:
    """Print what is being measured, where and when; return the same facts for the results file."""
    facts = machine()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    code = code_state()
    print(f"== {title} ==")
    print(f"command: {' '.join(argv)}")
    print(f"date:    {started}")
    print(f"code:    {code}")
    print(f"machine: {facts['cores']} cores ({facts['cpu']}), Python {facts['python']}, Linux {facts['kernel']}")
    print(f"load:    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min) before the run"
          + ("  <- other work is running; figures will be low and noisy" if load[0] > 0.5 else ""))
    if (facts["cores"] or 0) <= 2:
        print("note:    only 2 cores, shared by the load generator, the servers, PostgreSQL and Redis;"
              " figures are lower bounds for a host where they run apart")
    print()
    return {"title": title, "command": " ".join(argv), "date": started, "code": code, "load_before": load,
            "machine": facts}


class Steal:
    """The share of this machine's CPU time its host took for others (steal) since `Steal()` was made.

    On a shared virtual machine this is the one outside cause of slow, noisy figures that the load
    average does not show; each benchmark prints it beside its rounds and in its summary.
    """

    def __init__(self) -> None:
        self.steal, self.idle, self.total = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int]:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        except OSError:
            return 0, 0, 0
        # user nice system idle iowait irq softirq steal (guest time is already inside user)
        values = [int(v) for v in fields] + [0] * 8
        return values[7], values[3] + values[4], sum(values[:8])

    def share(self) -> float:
        steal, _, total = self._read()
        return (steal - self.steal) / max(1, total - self.total)

    def idle_share(self) -> float:
        """The share of CPU time nobody used (idle or waiting on the disk): above a few per cent
        under a closed-loop load, the servers wait on something other than the CPU."""
        _, idle, total = self._read()
        return (idle - self.idle) / max(1, total - self.total)

    def note(self) -> str:
        share = self.share()
        return (f"CPU stolen by the host: {share:.0%}"
                + ("  <- the host was busy: figures are low and noisy" if share > STEAL_WARNING else ""))


class CpuUse:
    """CPU time (user + system) used since it was made by one process group (a server this
    benchmark started, with its workers) and by PostgreSQL's processes, read from /proc: what a
    request costs each side, apart from the load generator and everything else."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.start = self._read()

    def _read(self) -> tuple[float, float]:
        server = database = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm, _, rest = stat.partition(" (")[2].rpartition(") ")
            fields = rest.split()  # state ppid pgrp ... utime (12th) stime (13th)
            ticks = int(fields[11]) + int(fields[12])
            if int(fields[2]) == self.group:
                server += ticks
            elif comm == "postgres":
                database += ticks
        hz = os.sysconf("SC_CLK_TCK")
        return server / hz, database / hz

    def since(self) -> tuple[float, float]:
        """Seconds of CPU the server and PostgreSQL used since this was made."""
        server, database = self._read()
        return server - self.start[0], database - self.start[1]


STEAL_WARNING = 0.05


class Hiccups:
    """The machine's own stalls, measured as jHiccup measures a JVM's: a child process asks to
    sleep 1 ms over and over and notes each wake-up more than `threshold_ms` late. A stall it
    sees stopped every process here (the host paused this virtual machine, or the CPU was not
    to be had), whatever the servers were doing.

        with Hiccups() as meter:
            ...                       # the load
        meter.stalls                  # [(start, end)] in time.monotonic() seconds
    """

    CHILD = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "late = float(sys.argv[1]) / 1000\n"
        "last = time.monotonic()\n"
        "while True:\n"
        "    time.sleep(0.001)\n"
        "    at = time.monotonic()\n"
        "    if at - last > late + 0.001:\n"
        "        print(last, at, flush=True)\n"
        "    last = at\n"
    )

    def __init__(self, threshold_ms: float = 20.0) -> None:
        self.threshold_ms = threshold_ms
        self.stalls: list[tuple[float, float]] = []
        self._child: subprocess.Popen | None = None

    def __enter__(self) -> "Hiccups":
        self._child = subprocess.Popen([sys.executable, "-c", self.CHILD, str(self.threshold_ms)],
                                       stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *_exc) -> None:
        self._child.terminate()
        out, _ = self._child.communicate(timeout=10)
        self.stalls = [(float(a), float(b)) for a, b in (line.split() for line in out.splitlines() if line.strip())]

    def summary(self) -> str:
        if not self.stalls:
            return f"the machine never stalled for {self.threshold_ms:.0f} ms or more"
        longest = max(end - start for start, end in self.stalls) * 1000
        return (f"the machine stalled {len(self.stalls)} time(s) for {self.threshold_ms:.0f} ms or more"
                f" (longest {longest:.0f} ms)")


def overlapping(spans: list[tuple[float, float]], others: list[tuple[float, float]]) -> int:
    """How many of `spans` overlap at least one of `others` (both as (start, end))."""
    others = sorted(others)
    count = 0
    for start, end in spans:
        count += any(o_start < end and o_end > start for o_start, o_end in others)
    return count


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so the child processes are stopped on the way out."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def save_results(name: str, results: dict) -> Path:
    """Write the run's figures as JSON under bench/results/ (git-ignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- profiling with py-spy (optional: pip install py-spy) ----------------------------------------

def find_py_spy() -> str | None:
    """py-spy on PATH or next to this interpreter."""
    import shutil

    return shutil.which("py-spy") or (str(VENV_BIN / "py-spy") if (VENV_BIN / "py-spy").exists() else None)


def py_spy(pid: int, seconds: float, out: Path, idle: bool = False) -> subprocess.Popen | None:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks); None without py-spy."""
    spy = find_py_spy()
    if spy is None:
        return None
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
            "--format", "raw", "--output", str(out), "--nonblocking"] + (["--idle"] if idle else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hot_spots(paths: list[Path], top: int = 20) -> list[tuple[str, float]]:
    """Where the main threads' samples fall: the deepest frame in service/, flows/ or workers/ (with the
    line), else the deepest rq/gunicorn/flask frame; as (place, share) pairs, largest first."""
    places: dict[str, int] = {}
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            frames = stack.split(";")
            if any("Thread._bootstrap" in f for f in frames):
                continue  # helper threads (RQ's pubsub listener, ...): not the work
            total += int(n)
            own = [f for f in frames if "(service/" in f or "(flows/" in f or "(workers/" in f]
            if own:
                place = own[-1]
            else:
                lib = [f for f in frames if "(rq/" in f or "(gunicorn/" in f or "(flask/" in f or "(werkzeug/" in f]
                place = "outside Hearth: " + (lib[-1] if lib else frames[-1])
            places[place] = places.get(place, 0) + int(n)
    if not total:
        return []
    return [(p, n / total) for p, n in sorted(places.items(), key=lambda kv: -kv[1])[:top]]


def print_hot_spots(title: str, spots: list[tuple[str, float]]) -> None:
    if title:
        print(f"  {title}")
    for place, share in spots:
        print(f"    {100 * share:5.1f}%  {place}")
