"""Small helpers the tests share: a clock moved by hand, signing, form builders."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
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
