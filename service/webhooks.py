"""The Twilio webhooks: signed, parsed into plain objects, handled by service functions, answered in TwiML."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.exceptions import HTTPException

from .calls import answer_call
from .database import db, rerun_if_disconnected
from .exceptions import BadRequest
from .forms import parse_inbound_call, parse_inbound_sms, parse_status_callback
from .inbound import handle_sms
from .signature import twilio_signed
from .status import record_status

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/twilio")


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


@bp.post("/sms")
@twilio_signed
def sms():
    """An inbound SMS: answered with TwiML (an empty <Response/> when there is nothing to say)."""
    message = parse_inbound_sms(request.form)
    converse = current_app.extensions.get("hearth_converse")
    return _xml(rerun_if_disconnected(db.session, lambda: handle_sms(db.session, message, converse=converse)))


@bp.post("/voice")
@twilio_signed
def voice():
    """An inbound call: every caller hears that this number takes texts, and the crisis contacts."""
    call = parse_inbound_call(request.form)
    return _xml(answer_call(db.session, call))


@bp.post("/status")
@twilio_signed
def status():
    """A delivery status callback for an outbound message."""
    callback = parse_status_callback(request.form)
    rerun_if_disconnected(db.session, lambda: record_status(db.session, callback))
    return _xml(str(MessagingResponse()))


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest):
    return Response(f"Bad request: {exc}\n", status=400, mimetype="text/plain")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return Response(f"{exc.name}: {exc.description}\n", status=exc.code, mimetype="text/plain")


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    # Twilio retries a 5xx and then uses its fallback URL; log it and say so plainly.
    log.exception("webhook %s failed", request.path)
    db.session.rollback()
    return Response("Hearth could not handle this request; it has been logged.\n", status=500, mimetype="text/plain")
