"""The Twilio transport, on the real SDK; TWILIO_API_BASE points it at a compatible double."""

from __future__ import annotations

import json
import math

from requests.exceptions import ConnectTimeout, RequestException
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from flows.sms import measure

from ..config import shown_url
from ..exceptions import PermanentSendError, RateLimitedSendError, SetupSendError, TransientSendError
from .base import SendResult

OPTED_OUT = 21610
INVALID_NUMBER = {21211, 21614}
RATE_LIMITED = 20429
# The account or the sender refused, not the message: wrong credentials (20003), an account that is
# not active (20005), an account SID that does not exist (20404), a From that is not this account's
# SMS number (21212, 21606, 21659), a Messaging Service SID that is not (21705).
SETUP_REFUSED = {20003, 20005, 20404, 21212, 21606, 21659, 21705}
# How long a 429 holds the sender when Twilio says nothing (Retry-After), and the most it may hold
# it for: a worker waits out the hold with the row claimed, inside its job's 30 s.
RETRY_AFTER_DEFAULT, RETRY_AFTER_MOST = 1.0, 10.0


class TwilioTransport:
    """Sends through Twilio's Messages API and sorts its errors into retry or give up."""

    def __init__(self, config, timeout: float = 10) -> None:
        if not (config.twilio_account_sid and config.twilio_auth_token):
            raise ValueError("the twilio transport needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not (config.twilio_from_number or config.twilio_messaging_service_sid):
            raise ValueError("the twilio transport needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        http = TwilioHttpClient(timeout=timeout)
        self.client = Client(config.twilio_account_sid, config.twilio_auth_token, http_client=http)
        if config.twilio_api_base:
            # The SDK reads TWILIO_EDGE/TWILIO_REGION from os.environ when given an empty mapping and
            # would rewrite a loopback host; a proxy from the environment would capture it too.
            self.client.edge = self.client.region = None
            self.client.api.base_url = config.twilio_api_base
            http.session.trust_env = False
        # The SDK's exception carries no headers: Retry-After, and whether the answer is the API's
        # JSON at all, are read off the response as it comes.
        self._retry_after: str | None = None
        self._not_the_api: str | None = None
        http.session.hooks["response"].append(self._note_answer)
        self.sender = (
            {"messaging_service_sid": config.twilio_messaging_service_sid}
            if config.twilio_messaging_service_sid
            else {"from_": config.twilio_from_number}
        )

    def send(self, to: str, body: str, status_callback: str | None, from_number: str | None = None) -> SendResult:
        """Create the message; 429 and 5xx are transient, the account's or sender's refusal a setup
        error, other 4xx permanent. An error answered in something other than JSON is not the API's:
        a 4xx page (a web server's 404 at a wrong TWILIO_API_BASE) is a setup error, a 5xx page (a
        proxy's 502) transient, and either names the URL asked.

        `from_number` (a community's own number) is the From; with a Messaging Service it must be
        in the service's sender pool, which Twilio then sends it through.
        """
        extra = {"status_callback": status_callback} if status_callback else {}
        if from_number:
            extra["from_"] = from_number
        self._retry_after = self._not_the_api = None
        try:
            message = self.client.messages.create(to=to, body=body, **{**self.sender, **extra})
        except (TwilioRestException, TwilioServiceException) as exc:
            if self._not_the_api is not None:
                # A page at the wrong address (404) or a refusal of the way in (401, 403) lasts until
                # the settings change; a proxy's 502 or 503 page may be gone in a moment, and the row's
                # tries with back-off are the right wait (an alert must not wait ten minutes for one).
                said = self._not_the_api[:500]
                raise (TransientSendError(said) if exc.status >= 500 else SetupSendError(said)) from None
            raise _classify(exc, self._retry_after) from None
        except RequestException as exc:
            if _never_reached(exc):
                raise TransientSendError(f"could not reach Twilio: {exc.__class__.__name__}") from None
            raise TransientSendError(f"no answer from Twilio ({exc.__class__.__name__}); it may have taken the"
                                     " message", maybe_taken=True) from None
        # A Messaging Service's answer counts no parts ("0": it counts them once it has picked a sender).
        segments = int(message.num_segments or 0) or measure(body).segments
        return SendResult(sid=message.sid, status=message.status or "queued", segments=segments)

    def _note_answer(self, response, *args, **kwargs):
        self._retry_after = response.headers.get("Retry-After")
        # A 429 asks Hearth to slow down, whoever answered it: it is held as Twilio's is.
        if response.status_code >= 400 and response.status_code != 429 and not _is_json(response.text):
            kind = response.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
            self._not_the_api = (f"{shown_url(response.url)} answered {response.status_code} with {kind}, not the"
                                 " Twilio API's JSON: check TWILIO_API_BASE (or a proxy in the way)")
        return response


def _classify(exc: TwilioRestException | TwilioServiceException, retry_after: str | None = None) -> Exception:
    """The error for the carrier's answer, in its legacy shape or as RFC 9457 problem details (the
    SDK's TwilioServiceException): both carry the HTTP status and Twilio's code."""
    code = exc.code
    said = exc.msg if isinstance(exc, TwilioRestException) else exc.detail or exc.title
    if exc.status in (401, 403) or code in SETUP_REFUSED:
        return SetupSendError(f"Twilio refused Hearth's account or sender ({code}): {said}; check the"
                              " TWILIO_* settings", code=code)
    if exc.status == 429 or code == RATE_LIMITED:
        return RateLimitedSendError(f"Twilio answered {exc.status} ({code}): {said}", code=code,
                                    retry_after=_seconds(retry_after))
    if exc.status >= 500:
        return TransientSendError(f"Twilio answered {exc.status} ({code}): {said}", code=code)
    return PermanentSendError(f"Twilio refused the message ({code}): {said}", code=code)


def _seconds(retry_after: str | None) -> float:
    """Retry-After in seconds, kept within 0.1..RETRY_AFTER_MOST; missing or not a number of seconds
    (an HTTP date, which Twilio does not send), the default."""
    try:
        seconds = float(retry_after)
    except (TypeError, ValueError):
        return RETRY_AFTER_DEFAULT
    return min(max(seconds, 0.1), RETRY_AFTER_MOST) if math.isfinite(seconds) else RETRY_AFTER_DEFAULT


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _never_reached(exc: RequestException) -> bool:
    """Whether the request surely never reached Twilio: no connection was made."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, ConnectTimeout) or isinstance(reason, NewConnectionError)
