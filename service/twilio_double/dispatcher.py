"""A small pool of threads that posts signed callbacks, one step of a sequence at a time."""

import heapq
import http.client
import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from service.config import is_loopback

USER_AGENT = "TwilioProxy/1.1"


@dataclass
class Step:
    """One status change: update the resource, then POST ``params`` to ``url`` (if any)."""

    kind: str  # "message-status", "call-status" or "call-url"
    sid: str
    status: str
    url: str | None
    params: dict
    fields: dict = field(default_factory=dict)
    copies: int = 1


@dataclass
class Sequence:
    """Steps posted strictly one after another, ``delay`` seconds apart."""

    steps: list
    delay: float
    index: int = 0


class Dispatcher:
    """Runs sequences on worker threads: different resources in parallel, each in order."""

    def __init__(self, auth_token, on_step, on_posted, workers=4, retries=2, timeout=5.0,
                 allow_remote=False):
        self._validator = RequestValidator(auth_token)
        self._on_step = on_step
        self._on_posted = on_posted
        self._workers = workers
        self._retries = retries
        self._timeout = timeout
        self._allow_remote = allow_remote
        self._heap: list = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the worker threads."""
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"twilio-double-callbacks-{n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers, dropping sequences not yet due, and join them."""
        self._stopping.set()
        with self._cond:
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def clear(self) -> None:
        """Drop every pending sequence (steps already being posted still finish)."""
        with self._cond:
            self._heap.clear()

    def submit(self, sequence: Sequence) -> None:
        """Run ``sequence``, its first step ``sequence.delay`` seconds from now."""
        if sequence.steps:
            self._schedule(sequence, time.monotonic() + sequence.delay)

    def _schedule(self, sequence: Sequence, due: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), sequence))
            self._cond.notify()

    def _next(self) -> Sequence | None:
        with self._cond:
            while not self._stopping.is_set():
                if self._heap:
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
        return None

    def _run(self) -> None:
        while (sequence := self._next()) is not None:
            step = sequence.steps[sequence.index]
            try:
                self._on_step(step)
                if step.url:
                    token = str(uuid.uuid4())
                    for _ in range(step.copies):
                        self._on_posted(step, *self._post(step.url, step.params, token))
            except Exception as exc:  # a worker must outlive a bad step; record it instead
                self._on_posted(step, None, None, None, f"internal error: {exc!r}", 0)
            sequence.index += 1
            if sequence.index < len(sequence.steps) and not self._stopping.is_set():
                self._schedule(sequence, time.monotonic() + sequence.delay)

    def _post(self, url: str, params: dict, token: str):
        """POST signed ``params``; returns (signature, http status, body, error, attempts)."""
        signature = self._validator.compute_signature(url, params)
        parts = urlsplit(url)
        if not self._allow_remote and not is_loopback(parts.hostname):
            return signature, None, None, "refused: callback host is not loopback", 0
        body = urlencode(params).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": token,
            "User-Agent": USER_AGENT,
        }
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        error = None
        for attempt in range(1, self._retries + 2):
            conn = conn_class(parts.hostname, parts.port, timeout=self._timeout)
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
                return signature, response.status, text, None, attempt
            except OSError as exc:  # refused, reset, timed out: Twilio retries these
                error = f"{type(exc).__name__}: {exc}"
            except http.client.HTTPException as exc:
                return signature, None, None, f"{type(exc).__name__}: {exc}", attempt
            finally:
                conn.close()
            if attempt > self._retries or self._stopping.wait(0.05 * attempt):
                break
        return signature, None, None, error, attempt

