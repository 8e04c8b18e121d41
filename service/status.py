"""Status callbacks: deduplicated on (sid, status), and never moving a message backwards."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .clock import now
from .consent import carrier_refused
from .forms import StatusCallback
from .models import OutboundMessage, StatusEvent
from .models.messages import DELIVERY_RANK


def record_status(session: Session, callback: StatusCallback) -> bool:
    """Store a callback and apply it to its outbox row; False when it was a repeat."""
    try:
        with session.begin_nested():
            session.add(StatusEvent(sid=callback.sid, status=callback.status, error_code=callback.error_code,
                                    received_at=now()))
    except IntegrityError:
        # A repeat. Its first delivery may have stopped before its second look (below), so look
        # now: applying stored statuses again is harmless, they only move forward.
        session.rollback()
        _apply_stored(session, callback.sid)
        return False
    row = _row_for(session, callback.sid)
    if row is not None:
        _apply(session, row, callback.status, callback.error_code)
        session.commit()
        return True
    session.commit()
    # No row had this sid: the sender has not committed it yet, and it looks for stored callbacks
    # just after it does. That look may have come before this commit, so look once more now: one of
    # the two looks always sees the other side's commit.
    _apply_stored(session, callback.sid)
    return True


def _apply_stored(session: Session, sid: str) -> None:
    """Apply every stored callback for `sid` to its outbox row, if it has one by now; commit."""
    row = _row_for(session, sid)
    if row is not None:
        catch_up(session, row)
    session.commit()


def _row_for(session: Session, sid: str) -> OutboundMessage | None:
    return session.scalar(select(OutboundMessage).where(OutboundMessage.provider_sid == sid).with_for_update())


def _apply(session: Session, row: OutboundMessage, status: str, error_code: int | None) -> None:
    """Apply one callback to its row and, the first time only, what its error code says of the
    member (21610, 21211, 21614): a callback Twilio delivers again, or one looked at again, must
    not opt out once more a member who has texted START since."""
    if advance(row, status, error_code):
        carrier_refused(session, row.member_id, error_code, f"status:{row.provider_sid}", sent_at=row.sent_at)


def advance(row: OutboundMessage, status: str, error_code: int | None) -> bool:
    """Move the row's delivery status forward only (delivered stays delivered); whether it moved."""
    if DELIVERY_RANK.get(status, -1) <= DELIVERY_RANK.get(row.delivery_status or "", -1):
        return False
    row.delivery_status = status
    row.updated_at = now()
    if error_code is not None:
        row.error_code = error_code
    return True


def catch_up(session: Session, row: OutboundMessage) -> None:
    """Apply callbacks that arrived before the row knew its sid."""
    for event in session.scalars(select(StatusEvent).where(StatusEvent.sid == row.provider_sid)):
        _apply(session, row, event.status, event.error_code)
