"""The one decorator every /twilio/* route wears: 403 unless X-Twilio-Signature validates."""

from __future__ import annotations

import logging
from functools import wraps

from flask import abort, current_app, request
from twilio.request_validator import RequestValidator

from .exceptions import BadRequest

log = logging.getLogger(__name__)

# Twilio's richest webhook (an MMS with ten media and its sender's geography) has about 50 fields.
# A form with thousands costs the signature check a tenth of a second each: refused before it.
MAX_FORM_FIELDS = 200

def signing_token(config) -> str:
    """The token webhooks must be signed with: Twilio's, or without it (`hearth simulate`, the
    console transport) the process's own random one, so the local pipeline checks signatures as
    the real one does and a deployment missing its token accepts no webhook at all.
    """
    return config.twilio_auth_token or config.local_signing_token


def public_url() -> str:
    """The URL Twilio signed: PUBLIC_BASE_URL, or the request's own scheme and host, with the path
    and the query exactly as they came (`request.url` would decode `%27` to `'`)."""
    base = current_app.config["HEARTH"].public_base_url or request.root_url.rstrip("/")
    # Twilio signs the URL it was given, percent-encoded: bytes that are not UTF-8 cannot be part
    # of it, so they are replaced and the signature fails (403), never the request (500).
    query = request.query_string.decode("utf-8", errors="replace")
    return base + request.path + (f"?{query}" if query else "")


def twilio_signed(view):
    """Refuse (403) a request whose signature does not match the public URL and form."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        config = current_app.config["HEARTH"]
        if sum(len(values) for values in request.form.listvalues()) > MAX_FORM_FIELDS:
            raise BadRequest(f"the form has more than {MAX_FORM_FIELDS} fields, which no Twilio webhook sends")
        if config.validate_signatures:
            signature = request.headers.get("X-Twilio-Signature", "")
            validator = RequestValidator(signing_token(config))
            url = public_url()
            if not signature or not validator.validate(url, request.form, signature):
                # Behind a proxy, a PUBLIC_BASE_URL that is not the URL Twilio was given refuses every
                # text: the URL checked is what lets an operator see that.
                log.warning("webhook refused (403): X-Twilio-Signature %s for %s",
                            "does not match" if signature else "missing", url)
                abort(403, description="X-Twilio-Signature does not match this request")
        return view(*args, **kwargs)

    return wrapper
