"""Hearth as it runs in production, on loopback: gunicorn web, rq worker(s) and the clock as processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support import sign

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def procfile_line(process: str) -> list[str]:
    """The Procfile's command for `process`, run by a shell from the repository root as honcho runs it."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return ["/bin/sh", "-c", f"exec {command.strip()}"]
    raise LookupError(f"the Procfile has no {process} line")


class Stack:
    """The three Procfile processes with a shared environment; logs go to files under `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The Procfile's lines as they are, with the design's environment (and the virtualenv first
        # on PATH, where `gunicorn`, `rq` and `python` are).
        self.env = {**os.environ, **env, "PUBLIC_BASE_URL": self.url, "PYTHONUNBUFFERED": "1", "PORT": str(self.port),
                    "WEB_CONCURRENCY": "2", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.logs = logs
        self.web: subprocess.Popen | None = None
        self.clock: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        try:
            return subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            log.close()

    def start(self, workers: int = 1) -> "Stack":
        self.web = self._spawn("web", procfile_line("web"))
        for _ in range(workers):
            self.start_worker()
        self.clock = self._spawn("clock", procfile_line("clock"))
        wait_until(self._healthy, timeout=30, what="the web app's /healthz")
        return self

    def start_worker(self) -> subprocess.Popen:
        worker = self._spawn(f"worker{len(self.workers)}", procfile_line("worker"))
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen) -> None:
        """kill -9: no chance to finish the job in hand or clean up."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def stop_worker(self, worker: subprocess.Popen) -> None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill_worker(worker)

    def _healthy(self) -> bool:
        if self.web.poll() is not None:
            raise AssertionError("web exited:\n" + (self.logs / "web.log").read_text()[-3000:])
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def post_signed(self, path: str, form: dict, token: str) -> requests.Response:
        """POST a form as Twilio would, signed for the public URL."""
        return requests.post(self.url + path, data=form, timeout=10,
                             headers={"X-Twilio-Signature": sign(self.url + path, form, token)})

    def stop(self) -> None:
        for process in [self.web, self.clock, *self.workers]:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in [self.web, self.clock, *self.workers]:
            if process is None:
                continue
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
