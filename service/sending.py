"""Sending one outbox row: claim it, respect the rate limit, hand it to the transport, record the answer."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from . import audit
from .clock import now
from .exceptions import PermanentSendError, TransientSendError
from .inbound import cancel_pending
from .models import Member, OutboundMessage
from .status import advance, catch_up
from .transports.twilio import INVALID_NUMBER, OPTED_OUT

log = logging.getLogger(__name__)

ALWAYS_SENT = {"opt_out"}  # the one message an opted-out member may get


def deliver(session: Session, outbox_id: int, *, transport, limiter, sender: str, final_attempt: bool) -> str:
    """Send one row at most once per claim; returns the row's state afterwards.

    Raises TransientSendError when the carrier may accept it later and tries remain.
    """
    if not _claim(session, outbox_id):
        return "skipped"
    row = session.get(OutboundMessage, outbox_id, populate_existing=True)
    member = session.get(Member, row.member_id) if row.member_id else None
    if member is not None and row.kind not in ALWAYS_SENT and (not member.reachable or member.fields.get("phone_error")):
        return _finish(session, row, "cancelled", error_message=f"member is {member.status}")
    limiter.acquire(sender)
    try:
        result = transport.send(row.to_number, row.body, _status_callback_url())
    except TransientSendError as exc:
        if final_attempt:
            return _finish(session, row, "failed", error_code=exc.code, error_message=str(exc))
        row.state, row.claimed_at, row.error_code, row.error_message = "pending", None, exc.code, str(exc)
        session.commit()
        raise
    except PermanentSendError as exc:
        _mark_member(session, member, exc.code)
        return _finish(session, row, "failed", error_code=exc.code, error_message=str(exc))
    row.provider_sid, row.segments, row.sent_at = result.sid, result.segments, now()
    advance(row, result.status, None)
    catch_up(session, row)
    return _finish(session, row, "sent")


def lease() -> timedelta:
    """How old a claim must be to count as a dead worker's (HEARTH_SEND_LEASE, default 60 s > job timeout)."""
    return timedelta(seconds=current_app.config["HEARTH"].send_lease)


def _claim(session: Session, outbox_id: int) -> bool:
    at = now()
    claimed = session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == outbox_id, OutboundMessage.due_at <= at,
               or_(OutboundMessage.state == "pending",
                   (OutboundMessage.state == "sending") & (OutboundMessage.claimed_at < at - lease())))
        .values(state="sending", claimed_at=at, attempts=OutboundMessage.attempts + 1, updated_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return claimed == 1


def _finish(session: Session, row: OutboundMessage, state: str, error_code: int | None = None,
            error_message: str | None = None) -> str:
    row.state, row.updated_at = state, now()
    if error_code is not None or error_message is not None:
        row.error_code, row.error_message = error_code, error_message
    session.commit()
    return state


def _mark_member(session: Session, member: Member | None, code: int | None) -> None:
    if member is None:
        return
    if code == OPTED_OUT and member.status != "opted_out":
        member.status, member.opted_out_at = "opted_out", now()
        cancel_pending(session, member.id)
        audit.record(session, "carrier", "member.opted_out", community_id=member.community_id,
                     member_id=member.id, source="twilio:21610")
    elif code in INVALID_NUMBER:
        member.fields = {**member.fields, "phone_error": code}
        audit.record(session, "carrier", "member.phone_invalid", community_id=member.community_id,
                     member_id=member.id, code=code)


def _status_callback_url() -> str | None:
    base = current_app.config["HEARTH"].public_base_url
    return f"{base}/twilio/status" if base else None
