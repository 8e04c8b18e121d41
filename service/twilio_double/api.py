"""The Twilio REST endpoints the double answers: create and fetch Messages and Calls."""

import base64
import binascii
import hmac
import re
import time

from . import callbacks, errors, resources
from .errors import ApiError

API_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/(Messages|Calls)(?:/([^/.]+))?\.json$")


class Answer:
    """What to send back: status, JSON body, extra headers, and work to do once sent."""

    __slots__ = ("status", "body", "headers", "after", "code", "sid")

    def __init__(self, status, body, headers=None, after=None, code=None, sid=None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.after, self.code, self.sid = after, code, sid

    @classmethod
    def error(cls, error: ApiError) -> "Answer":
        """The Twilio error JSON for ``error``."""
        return cls(error.status, error.body(), error.headers, code=error.code)


def basic_auth(account_sid: str, auth_token: str) -> str:
    """The exact Authorization header the SDK sends for these credentials."""
    return "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()


def credentials_match(header: str | None, expected: str, account_sid: str, auth_token: str) -> bool:
    """True when an Authorization header carries the double's sid and token."""
    if header is None:
        return False
    if hmac.compare_digest(header, expected):
        return True
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, account_sid) and hmac.compare_digest(password, auth_token)


def handle(double, method: str, path: str, authorization: str | None, params: dict) -> Answer:
    """Answer one REST request the way Twilio would."""
    if not credentials_match(authorization, double.expected_auth, double.account_sid, double.auth_token):
        return Answer.error(errors.authenticate())
    match = API_PATH.match(path)
    if not match or match.group(1) != double.account_sid:
        return Answer.error(errors.not_found(path))
    _, collection, sid = match.groups()
    if sid is None and method == "POST":
        return _create(double, collection, params)
    if sid is not None and method == "GET":
        found = double.recorder.resource(sid)
        if found is None or not sid.startswith("SM" if collection == "Messages" else "CA"):
            return Answer.error(errors.not_found(path))
        return Answer(200, found, sid=sid)
    return Answer.error(errors.method_not_allowed(method))


# Parameters a message or call takes once; of the rest, MediaUrl and StatusCallbackEvent may repeat.
SINGLE = ("To", "From", "Body", "MessagingServiceSid", "StatusCallback", "Url", "Twiml", "Method")


def _create(double, collection: str, params: dict) -> Answer:
    repeated = [name for name in SINGLE if isinstance(params.get(name), list)]
    if repeated:
        return Answer.error(errors.invalid_parameter(repeated[0], "given more than once"))
    to = params.get("To")
    kind = double.behaviour.take_failure(to) if isinstance(to, str) and to else None
    if kind == "html":
        return Answer(200, errors.PROXY_PAGE)
    if kind is not None:
        return Answer.error(errors.failure(kind, to, double.behaviour.settings.retry_after))
    build = resources.create_message if collection == "Messages" else resources.create_call
    created = build(params, double.account_sid, double.clock())
    if isinstance(created, ApiError):
        return Answer.error(created)
    double.recorder.add_resource(dict(created))
    if double.behaviour.settings.answer_delay > 0:
        time.sleep(double.behaviour.settings.answer_delay)
    # Settings are read now, not after the answer is written: a test may change them
    # as soon as it has the answer.
    if collection == "Messages":
        outcome = double.behaviour.outcome_for(created["to"], "delivered")
        settings = outcome.settings(double.behaviour.settings)
        sequence = callbacks.message_sequence(created, outcome, settings, params.get("StatusCallback"),
                                              double.messaging_service_from)
    else:
        outcome = double.behaviour.outcome_for(created["to"], "completed")
        settings = outcome.settings(double.behaviour.settings)
        sequence = callbacks.call_sequence(created, params, outcome, settings)
    after = (lambda: double.dispatcher.submit(sequence)) if settings.callbacks else None
    return Answer(201, created, after=after, sid=created["sid"])
