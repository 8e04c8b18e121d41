"""The /_double/* HTTP API, so a double in another process can be inspected and steered."""

import dataclasses

from .api import Answer

PREFIX = "/_double/"


def handle(double, method: str, path: str, payload) -> Answer:
    """Answer one control request; ``payload`` is the parsed JSON body (or None)."""
    name = path[len(PREFIX):].strip("/")
    try:
        if method == "GET":
            reader = _READERS.get(name)
            if reader is None:
                return _error(404, f"no control endpoint GET {path}")
            return Answer(200, reader(double))
        if method == "POST":
            writer = _WRITERS.get(name)
            if writer is None:
                return _error(404, f"no control endpoint POST {path}")
            if payload is not None and not isinstance(payload, dict):
                return _error(400, "the body must be a JSON object")
            return Answer(200, writer(double, payload or {}))
    except (KeyError, TypeError, ValueError) as exc:
        return _error(400, f"{type(exc).__name__}: {exc}")
    return _error(405, f"method {method} not allowed on {path}")


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"error": message, "status": status})


def _fail(double, body: dict) -> dict:
    times = body.get("times")
    double.fail(body["to"], str(body["kind"]), None if times is None else int(times))
    return {"ok": True}


def _outcome(double, body: dict) -> dict:
    body = dict(body)
    outcome = double.outcome(body.pop("to"), body.pop("status"), **body)
    return {"ok": True, "outcome": dataclasses.asdict(outcome)}


def _config(double, body: dict) -> dict:
    return {"ok": True, "settings": dataclasses.asdict(double.configure(**body))}


def _reset(double, body: dict) -> dict:
    double.reset()
    return {"ok": True}


_READERS = {
    "health": lambda d: {"status": "ok", "url": d.url, "account_sid": d.account_sid},
    "requests": lambda d: d.requests,
    "messages": lambda d: d.messages,
    "calls": lambda d: d.calls,
    "callbacks": lambda d: d.callbacks,
    "settings": lambda d: dataclasses.asdict(d.settings),
    "counts": lambda d: d.counts,
}
_WRITERS = {"fail": _fail, "outcome": _outcome, "config": _config, "reset": _reset}
