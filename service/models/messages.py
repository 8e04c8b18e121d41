"""Messages in (deduplicated on MessageSid) and out (the outbox), and delivery status events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, one_of

# Pipeline states of an outbox row (ours); the carrier's view is `delivery_status`.
PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
STATES = (PENDING, SENDING, SENT, FAILED, CANCELLED)
UNSENT = (PENDING, SENDING)  # an outbox row that may still go
UNSENT_WHERE = f"state IN ({', '.join(repr(state) for state in UNSENT)})"

# The queues a row is sent from (`workers.queues`), the kinds of message (`outbox.QUEUE_FOR_KIND`),
# how a row was sent other than by a job (a reply in the webhook's TwiML), and its encoding.
QUEUES = ("crisis", "replies", "bulk")
KINDS = ("crisis", "alert", "reply", "welcome", "flow", "reminder", "broadcast", "checkin")
VIAS = ("twiml",)
ENCODINGS = ("GSM-7", "UCS-2")

# Carrier statuses in the order they can happen; a callback never moves a message backwards.
DELIVERY_RANK = {
    "accepted": 0, "queued": 1, "sending": 2, "sent": 3,
    "failed": 4, "undelivered": 4, "partially_delivered": 5, "delivered": 5, "read": 6,
}


class InboundMessage(Base):
    """An SMS a phone sent us, with the answer we gave, so a retried webhook gets the same one."""

    __tablename__ = "inbound_messages"
    # When a member last texted is their newest row here (no column on the member to update).
    __table_args__ = (Index("ix_inbound_messages_member_received", "member_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    from_number: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    handled_as: Mapped[str] = mapped_column(String(64))  # "flow:<id>" at most 45
    response: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class OutboundMessage(Base):
    """One row of the outbox: every message is one of these before it is a job."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_due", "state", "due_at"),
        # The rows not yet sent, by number: what a claim looks for before it takes a later one.
        Index("ix_outbound_unsent_to", "to_number", "id", postgresql_where=text(UNSENT_WHERE),
              sqlite_where=text(UNSENT_WHERE)),
        one_of("state", STATES),
        one_of("queue", QUEUES),
        one_of("kind", KINDS),
        one_of("via", VIAS),
        one_of("encoding", ENCODINGS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    to_number: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    queue: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    via: Mapped[str | None] = mapped_column(String(16))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)  # claims: every write of a send names its own
    # Tries the carrier refused for Hearth's account or sender, not the message: its own tries are
    # `attempts - refusals`.
    refusals: Mapped[int] = mapped_column(default=0, server_default="0")
    # Claims taken over from a worker that stopped while it held the row (it may have sent it).
    cut_off: Mapped[int] = mapped_column(default=0, server_default="0")
    claimed_at: Mapped[datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(24))
    error_code: Mapped[int | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(default=1)
    encoding: Mapped[str] = mapped_column(String(8), default="GSM-7")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class StatusEvent(Base):
    """A status callback as received; (sid, status) is unique so a repeat changes nothing."""

    __tablename__ = "status_events"
    __table_args__ = (UniqueConstraint("sid", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    error_code: Mapped[int | None]
    received_at: Mapped[datetime]
