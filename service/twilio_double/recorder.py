"""Everything the double saw and did, kept thread-safe, with a way to wait for change."""

import threading
import time

# How far along a status is; a resource never moves backwards even when
# callbacks are deliberately posted out of order.
_RANK = {
    "accepted": 0, "queued": 1, "initiated": 2, "ringing": 3, "sent": 4, "in-progress": 4,
    "delivered": 5, "undelivered": 5, "failed": 5, "completed": 5, "busy": 5,
    "no-answer": 5, "canceled": 5,
}


class Recorder:
    """Requests received, resources created, callbacks posted; every read is a copy."""

    def __init__(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._requests: list[dict] = []
        self._resources: dict[str, dict] = {}
        self._callbacks: list[dict] = []

    def clear(self) -> None:
        """Forget everything recorded."""
        with self._lock:
            self._requests.clear()
            self._resources.clear()
            self._callbacks.clear()
        self._notify()

    def add_request(self, entry: dict) -> None:
        """Record one API request (method, path, params, status, code, sid, time)."""
        with self._lock:
            self._requests.append(entry)
        self._notify()

    def add_resource(self, resource: dict) -> None:
        """Keep a created Message or Call so it can be fetched and advanced."""
        with self._lock:
            self._resources[resource["sid"]] = resource
        self._notify()

    def add_callback(self, entry: dict) -> None:
        """Record one callback the double posted (or tried to) and how it was answered."""
        with self._lock:
            self._callbacks.append(entry)
        self._notify()

    def advance(self, sid: str, status: str, fields: dict) -> None:
        """Move resource ``sid`` to ``status`` (never backwards), setting ``fields`` too."""
        with self._lock:
            resource = self._resources.get(sid)
            if resource is None:
                return
            if _RANK.get(status, 0) >= _RANK.get(resource["status"], 0):
                resource["status"] = status
                resource.update(fields)
        self._notify()

    def resource(self, sid: str) -> dict | None:
        """A copy of the Message or Call ``sid``, or None."""
        with self._lock:
            found = self._resources.get(sid)
            return _copy(found) if found else None

    def requests(self) -> list[dict]:
        """Copies of every API request, oldest first."""
        with self._lock:
            return [_copy(r) for r in self._requests]

    def resources(self, prefix: str) -> list[dict]:
        """Copies of the resources whose sid starts with ``prefix`` ("SM" or "CA")."""
        with self._lock:
            return [_copy(r) for sid, r in self._resources.items() if sid.startswith(prefix)]

    def callbacks(self) -> list[dict]:
        """Copies of every callback posted, in the order they were answered."""
        with self._lock:
            return [_copy(c) for c in self._callbacks]

    def counts(self) -> dict:
        """How many requests, messages, calls and callbacks, without copying anything."""
        with self._lock:
            messages = sum(1 for sid in self._resources if sid.startswith("SM"))
            return {"requests": len(self._requests), "messages": messages,
                    "calls": len(self._resources) - messages, "callbacks": len(self._callbacks)}

    def wait_for(self, predicate, timeout: float):
        """Return ``predicate()`` once truthy; raise TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            started = time.monotonic()
            result = predicate()
            if result:
                return result
            checked = time.monotonic()
            remaining = deadline - checked
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            with self._changed:
                # Woken by any change; the cap covers a change racing the check above.
                self._changed.wait(min(remaining, 0.05))
            # A predicate that copies a long history must not starve the threads it waits on.
            pause = min(2 * (checked - started), deadline - time.monotonic())
            if pause > 0.001:
                time.sleep(pause)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _copy(entry: dict) -> dict:
    """A copy deep enough that callers cannot change what was recorded (dict values copied)."""
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
            for k, v in entry.items()}


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Poll ``predicate()`` until truthy and return it; TimeoutError at the deadline.

    For state outside a double in this process (a receiver, a double in another process).
    """
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return result
