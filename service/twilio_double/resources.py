"""Validate create requests like Twilio does and build the Message and Call JSON."""

import re
import uuid
from datetime import datetime, timezone
from email.utils import format_datetime

from flows.sms import measure

from . import errors

API_VERSION = "2010-04-01"
MAX_BODY = 1600
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CHANNEL_PREFIX = re.compile(r"^(whatsapp|messenger):")
CALL_ENDPOINT = re.compile(r"^(client:[\w.@-]+|sip:\S+)$")


def rfc2822(epoch: float) -> str:
    """Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(datetime.fromtimestamp(int(epoch), timezone.utc))


def new_sid(prefix: str) -> str:
    """A Twilio-style sid: two letters and 32 hex digits."""
    return prefix + uuid.uuid4().hex


def is_phone_number(value: str) -> bool:
    """E.164-ish: a plus, then 7 to 15 digits, optionally behind a channel prefix."""
    return bool(E164.match(CHANNEL_PREFIX.sub("", value)))


def create_message(params: dict, account_sid: str, now: float):
    """The new Message resource for ``params``, or the ApiError Twilio would answer."""
    to = params.get("To")
    if not to:
        return errors.missing(21604, "A 'To' phone number is required.")
    if not is_phone_number(to):
        return errors.invalid_to(to)
    sender, service = params.get("From"), params.get("MessagingServiceSid")
    if not sender and not service:
        return errors.missing(21603, "A 'From' phone number is required.")
    body = params.get("Body")
    if not body and not params.get("MediaUrl") and not params.get("ContentSid"):
        return errors.missing(21602, "Message body is required.")
    body = body or ""
    if len(body) > MAX_BODY:
        return errors.missing(21617, "The concatenated message body exceeds the 1600 character limit.")
    sid = new_sid("SM")
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    stamp = rfc2822(now)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": stamp,
        "date_sent": None,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender or None,
        "messaging_service_sid": service or None,
        "num_media": str(len(_as_list(params.get("MediaUrl")))),
        # With a Messaging Service Twilio counts the parts once it has picked a sender (a callback's
        # step): its answer says "0".
        "num_segments": "0" if service else str(measure(body).segments),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        # Twilio answers "accepted" while a messaging service still has to pick a sender.
        "status": "queued" if sender else "accepted",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": to,
        "uri": f"{uri}.json",
    }


def create_call(params: dict, account_sid: str, now: float):
    """The new Call resource for ``params``, or the ApiError Twilio would answer."""
    to = params.get("To")
    if not to:
        return errors.missing(21201, "No 'To' number is specified")
    if not (is_phone_number(to) or CALL_ENDPOINT.match(to)):
        return errors.invalid_to(to)
    sender = params.get("From")
    if not sender:
        return errors.missing(21213, "No 'From' number is specified")
    if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
        return errors.missing(21205, "Url parameter is required.")
    sid = new_sid("CA")
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{sid}"
    stamp = rfc2822(now)
    return {
        "account_sid": account_sid,
        "annotation": None,
        "answered_by": None,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": stamp,
        "date_updated": stamp,
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": sender,
        "from_formatted": sender,
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": None,
        "status": "queued",
        "subresource_uris": {"notifications": f"{uri}/Notifications.json"},
        "to": to,
        "to_formatted": to,
        "trunk_sid": None,
        "uri": f"{uri}.json",
    }


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
