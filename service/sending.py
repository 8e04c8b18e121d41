"""Sending one outbox row: claim it, respect the rate limit, hand it to the transport, record the answer."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session

from . import audit
from .clock import now
from .consent import opt_out
from .exceptions import PermanentSendError, TransientSendError
from .models import Member, OutboundMessage
from .status import advance, catch_up
from .transports.twilio import INVALID_NUMBER, OPTED_OUT

log = logging.getLogger(__name__)


def lease() -> timedelta:
    """How old a claim must be to count as a dead worker's (HEARTH_SEND_LEASE, default 60 s > job timeout)."""
    return timedelta(seconds=current_app.config["HEARTH"].send_lease)


def claimable(at: datetime) -> ColumnElement[bool]:
    """Rows a send may take: due and pending, or claimed by a worker so long ago it must be dead."""
    return (OutboundMessage.due_at <= at) & or_(
        OutboundMessage.state == "pending",
        (OutboundMessage.state == "sending") & (OutboundMessage.claimed_at < at - lease()),
    )


def deliver(session: Session, outbox_id: int, *, transport, limiter, sender: str, final_attempt: bool) -> str:
    """Send one row at most once per claim; returns the row's state afterwards.

    No transaction is held while waiting for the rate limit or the carrier. Raises
    TransientSendError when the carrier may accept it later and tries remain.
    """
    if not _claim(session, outbox_id):
        return "skipped"
    limiter.acquire(sender)
    # Looked at again after the wait: a STOP that arrived meanwhile wins.
    row = session.get(OutboundMessage, outbox_id, populate_existing=True)
    member = session.get(Member, row.member_id, populate_existing=True) if row.member_id else None
    if member is not None and (not member.reachable or member.fields.get("phone_error")):
        return _finish(session, row, "cancelled", error_message=f"member is {member.status}")
    to, body = row.to_number, row.body
    session.rollback()
    try:
        result = transport.send(to, body, _status_callback_url())
    except TransientSendError as exc:
        row = session.get(OutboundMessage, outbox_id)
        if final_attempt:
            return _finish(session, row, "failed", error_code=exc.code, error_message=str(exc))
        row.state, row.claimed_at, row.error_code, row.error_message = "pending", None, exc.code, str(exc)
        session.commit()
        raise
    except PermanentSendError as exc:
        row = session.get(OutboundMessage, outbox_id)
        _mark_member(session, row.member_id, exc.code)
        return _finish(session, row, "failed", error_code=exc.code, error_message=str(exc))
    row = session.get(OutboundMessage, outbox_id)
    row.provider_sid, row.segments, row.sent_at = result.sid, result.segments, now()
    advance(row, result.status, None)
    state = _finish(session, row, "sent")
    # A callback that arrived between the carrier's answer and this commit is applied now.
    catch_up(session, session.get(OutboundMessage, outbox_id, populate_existing=True))
    session.commit()
    return state


def _claim(session: Session, outbox_id: int) -> bool:
    at = now()
    claimed = session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == outbox_id, claimable(at))
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


def _mark_member(session: Session, member_id: int | None, code: int | None) -> None:
    member = session.get(Member, member_id, with_for_update=True) if member_id else None
    if member is None:
        return
    if code == OPTED_OUT:
        opt_out(session, member, "carrier", "twilio:21610")
    elif code in INVALID_NUMBER:
        member.fields = {**member.fields, "phone_error": code}
        audit.record(session, "carrier", "member.phone_invalid", community_id=member.community_id,
                     member_id=member.id, code=code)


def _status_callback_url() -> str | None:
    base = current_app.config["HEARTH"].public_base_url
    return f"{base}/twilio/status" if base else None
