"""Twilio's webhook forms parsed into plain objects; anything malformed is a BadRequest with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .exceptions import BadRequest

SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
NUMBER = re.compile(r"^\+?[0-9]{3,16}$")
# An alphanumeric sender ID (a network's or a bank's texts): up to 11 letters, digits and spaces.
SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
MAX_BODY = 10_000


@dataclass(frozen=True)
class InboundSms:
    """One inbound SMS."""

    sid: str
    from_number: str
    to_number: str
    body: str


@dataclass(frozen=True)
class InboundCall:
    """One inbound voice call."""

    sid: str
    from_number: str
    to_number: str


@dataclass(frozen=True)
class StatusCallback:
    """One outbound message status report."""

    sid: str
    status: str
    error_code: int | None


STATUSES = {"accepted", "queued", "sending", "sent", "failed", "delivered", "undelivered", "read",
            "receiving", "received", "scheduled", "canceled", "partially_delivered"}


def _field(form, name: str, *alternatives: str) -> str:
    for key in (name, *alternatives):
        value = form.get(key)
        if value is not None:
            if "\x00" in value:
                raise BadRequest(f"{key} contains a NUL character")
            return value
    raise BadRequest(f"missing form field {name}")


def _number(form, name: str) -> str:
    value = _field(form, name).strip().replace(" ", "")
    if not NUMBER.match(value):
        raise BadRequest(f"{name} is not a phone number")
    return value


def _sender(form, name: str) -> str:
    """A phone number, a short code, or an alphanumeric sender ID: all can text a Twilio number."""
    value = _field(form, name).strip()
    return value if SENDER_ID.match(value) else _number(form, name)


def _sid(form, name: str, *alternatives: str) -> str:
    sid = _field(form, name, *alternatives).strip()
    if not SID.match(sid):
        raise BadRequest(f"{name} is not a Twilio sid")
    return sid


def parse_inbound_sms(form) -> InboundSms:
    """MessageSid, From, To and Body of an inbound SMS."""
    sid = _sid(form, "MessageSid", "SmsSid")
    sender, to = _sender(form, "From"), _number(form, "To")
    body = _field(form, "Body")
    if len(body) > MAX_BODY:
        raise BadRequest(f"Body is longer than {MAX_BODY} characters")
    return InboundSms(sid=sid, from_number=sender, to_number=to, body=body)


def parse_inbound_call(form) -> InboundCall:
    """CallSid, From and To of an inbound call (From may be "anonymous" or a withheld number's placeholder)."""
    sid = _sid(form, "CallSid")
    if not sid.startswith("CA"):
        raise BadRequest("CallSid is not a call's sid")
    caller = _field(form, "From").strip()[:32]
    return InboundCall(sid=sid, from_number=caller, to_number=_number(form, "To"))


def parse_status_callback(form) -> StatusCallback:
    """MessageSid, MessageStatus and ErrorCode of a status callback."""
    sid = _sid(form, "MessageSid", "SmsSid")
    status = _field(form, "MessageStatus", "SmsStatus").strip().lower()
    if status not in STATUSES:
        raise BadRequest(f"MessageStatus {status!r} is not one Twilio sends")
    raw_code = (form.get("ErrorCode") or "").strip()
    if raw_code and not (raw_code.isascii() and raw_code.isdigit() and len(raw_code) <= 6):
        raise BadRequest("ErrorCode is not a Twilio error code")
    return StatusCallback(sid=sid, status=status, error_code=int(raw_code) if raw_code else None)
