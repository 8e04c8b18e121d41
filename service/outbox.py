"""The outbox: every message is a row with a unique key before it is a job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import now as clock_now
from .models import Member, OutboundMessage
from flows.sms import measure

QUEUE_FOR_KIND = {
    "crisis": "crisis",
    "reply": "replies", "welcome": "replies", "flow": "replies",
    "broadcast": "bulk", "checkin": "bulk",
}
STAGED = "hearth_staged_sends"


def queue_message(session: Session, *, key: str, to: str, body: str, kind: str,
                  member: Member | None = None, community_id: int | None = None,
                  due_at: datetime | None = None, via: str | None = None) -> OutboundMessage:
    """Add an outbox row unless one with `key` exists; it is enqueued once the transaction commits.

    `via="twiml"` records a reply that travels in the webhook's answer and needs no job.
    """
    if via != "twiml":  # a TwiML reply's key holds a MessageSid this request has just claimed
        existing = session.scalar(select(OutboundMessage).where(OutboundMessage.idempotency_key == key))
        if existing is not None:
            return existing
    at = clock_now()
    size = measure(body)
    row = OutboundMessage(
        idempotency_key=key, to_number=to, body=body, kind=kind,
        queue=QUEUE_FOR_KIND.get(kind, "bulk"),
        member_id=member.id if member else None,
        community_id=member.community_id if member else community_id,
        state="sent" if via == "twiml" else "pending", via=via,
        due_at=due_at or at, segments=size.segments, encoding=size.name,
        created_at=at, updated_at=at, sent_at=at if via == "twiml" else None,
    )
    session.add(row)
    if via == "twiml":
        return row  # written with the rest of the webhook's transaction; no job
    session.flush()
    if row.due_at <= at:
        session.info.setdefault(STAGED, []).append((row.id, row.queue))
    return row


def take_staged(session: Session) -> list[tuple[int, str]]:
    """The sends this session staged, emptied; called after commit to enqueue them."""
    return session.info.pop(STAGED, [])
