"""The HTTP request handler: parse the request, hand it to api or control, write JSON."""

import json
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from . import api, control

MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1; one short method per verb; no logging unless asked for."""

    protocol_version = "HTTP/1.1"
    server_version = "TwilioDouble/1.0"
    disable_nagle_algorithm = True  # headers and body go out as two writes
    timeout = 120  # an idle keep-alive connection is dropped after this

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        double = self.server.double
        path, _, query = self.path.partition("?")
        try:
            raw = self._read_body()
        except ValueError:
            self._write(api.Answer(400, {"error": "Content-Length is not a number", "status": 400}))
            self.close_connection = True  # where the body ends is not known
            return
        if raw is None:
            self._write(api.Answer(413, {"error": "body too large", "status": 413}))
            self.close_connection = True
            return
        if path.startswith(control.PREFIX):
            try:
                payload = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                self._write(api.Answer(400, {"error": f"invalid JSON: {exc}", "status": 400}))
                return
            self._write(control.handle(double, method, path, payload))
            return
        params = _form(raw.decode("utf-8", "replace") if method in ("POST", "PUT") else query)
        answer = api.handle(double, method, path, self.headers.get("Authorization"), params)
        double.recorder.add_request({
            "method": method,
            "path": path,
            "params": params,
            "to": params.get("To"),
            "status": answer.status,
            "code": answer.code,
            "sid": answer.sid,
            "time": time.time(),
        })
        self._write(answer)
        if answer.after is not None:
            answer.after()

    def _read_body(self) -> bytes | None:
        """The request's body; None when it is too large; ValueError when its length is not a number."""
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError(length)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, answer: api.Answer) -> None:
        page = isinstance(answer.body, str)  # not the API's JSON: what a proxy in the way answers
        data = answer.body.encode() if page else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/html; charset=utf-8" if page else "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if self.server.double.log_requests:
            super().log_message(format, *args)


def _form(text: str) -> dict:
    """Form fields as a dict: one value as a string, a repeated field as a list."""
    parsed = parse_qs(text, keep_blank_values=True)
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}
