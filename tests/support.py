"""Small helpers the tests share: a clock moved by hand, signing, form builders."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator


class FakeClock:
    """Returns the same time until moved."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def sign(url: str, form: dict, token: str) -> str:
    """The X-Twilio-Signature Twilio would send."""
    return RequestValidator(token).compute_signature(url, form)


def sms_form(body: str, from_number: str = "+447700900123", to: str = "+441632960000", sid: str | None = None) -> dict:
    """An inbound SMS form as Twilio posts it."""
    return {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": from_number,
            "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1"}


def twiml_messages(xml: str) -> list[str]:
    """The texts of the <Message> elements in a TwiML answer, in order."""
    return [m.text for m in ElementTree.fromstring(xml).iter("Message")]


def sweep_now(session, redis, **kwargs) -> int:
    """One sweep that enqueues at once what it finds without a job (`sweep` waits for a second
    sweep to find a row so too): for tests of what a sweep finds, not of when it acts."""
    from service.sweeper import sweep

    return sweep(session, redis, confirm=timedelta(0), **kwargs)


@contextmanager
def answering(status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None):
    """A web server on loopback that answers every POST with `status` and `body` (a carrier's error in
    some shape, a wrong TWILIO_API_BASE's page, a proxy's); yields its base URL."""

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)),
                                **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
