"""The outbox: every message is a row with a unique key before it is a job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, scoped_session

from .clock import now as clock_now
from .models import Member, OutboundMessage
from flows.sms import measure

QUEUE_FOR_KIND = {
    "crisis": "crisis", "alert": "crisis",
    "reply": "replies", "welcome": "replies", "flow": "replies", "reminder": "replies",
    "broadcast": "bulk", "checkin": "bulk",
}
# Kinds that go before every other send from their number when they wait for the rate limit.
URGENT_KINDS = frozenset(kind for kind, queue in QUEUE_FOR_KIND.items() if queue == "crisis")
STAGED = "hearth_staged_sends"
# Kinds that wait for the end of the community's quiet hours: what Hearth sends unasked outside a
# conversation. A flow's messages go when its conversation runs (holding one back would leave the
# conversation's timers running without it): its reminders are set aside in quiet hours, and a
# facilitator does not start one in them unless asked to. Replies answer the member at once;
# crisis messages go at once, day or night.
QUIET_KINDS = frozenset({"welcome", "broadcast"})
# Kinds that belong to their time: a scheduled check-in and a conversation's reminder. One that
# could not go within `clock.MISSED_AFTER` of its time (workers down, a long wait for the carrier)
# is set aside when its turn comes, as the clock sets aside a schedule or a timer that late.
TIMELY_KINDS = frozenset({"checkin", "reminder"})


def queue_message(session: Session, *, key: str, to: str, body: str, kind: str,
                  member: Member | None = None, community_id: int | None = None,
                  due_at: datetime | None = None, queue: str | None = None) -> OutboundMessage:
    """Add an outbox row unless one with `key` exists; it is enqueued once the transaction commits.

    It goes on the queue for its kind unless `queue` says otherwise (a welcome to one member is a
    reply; welcomes to a whole imported list are bulk, so replies do not wait behind them). A
    message Hearth sends unasked (`QUIET_KINDS`) that would go in the community's quiet hours
    waits for their end.
    """
    existing = session.scalar(select(OutboundMessage).where(OutboundMessage.idempotency_key == key))
    if existing is not None:
        return existing
    at = clock_now()
    if kind in QUIET_KINDS and member is not None:
        due_at = member.community.quiet_until(due_at or at) or due_at
    size = measure(body)
    row = OutboundMessage(
        idempotency_key=key, to_number=to, body=body, kind=kind, queue=queue or QUEUE_FOR_KIND.get(kind, "bulk"),
        member_id=member.id if member else None, community_id=member.community_id if member else community_id,
        state="pending", due_at=due_at or at, segments=size.segments, encoding=size.name,
        created_at=at, updated_at=at,
    )
    session.add(row)
    session.flush()
    if row.due_at <= at:
        _stage(session, row)
    return row


def welcome_now(session: Session, member: Member, queue: str) -> None:
    """Send the member's welcome now if it waits for the end of quiet hours: a flow started for them
    in quiet hours (a facilitator's `--in-quiet-hours`, a schedule whose time is in them) must not
    reach them before it. It joins `queue`, the flow's, ahead of the flow's messages, so that a
    claim takes it first (a row waits for an earlier one due on its queue). A welcome held has no
    job yet: the sweeper gives rows one when they fall due."""
    at = clock_now()
    for row in session.scalars(select(OutboundMessage).where(
            OutboundMessage.member_id == member.id, OutboundMessage.kind == "welcome",
            OutboundMessage.state == "pending", OutboundMessage.due_at > at)):
        row.due_at, row.queue, row.updated_at = at, queue, at
        session.flush()
        _stage(session, row)


def record_twiml_replies(session: Session, *, sid: str, to: str, bodies: list[str], member_id: int | None,
                         community_id: int | None) -> int:
    """Record the replies an inbound message's TwiML answer carries: sent with the answer, so no job.
    Returns how many parts (segments) they are in all.

    One INSERT for all of them; their keys hold the MessageSid this transaction has just claimed,
    so none can exist already.
    """
    if not bodies:
        return 0
    at = clock_now()
    rows = []
    for index, body in enumerate(bodies):
        size = measure(body)
        rows.append(dict(
            idempotency_key=f"reply:{sid}:{index}", to_number=to, body=body, kind="reply",
            queue=QUEUE_FOR_KIND["reply"], member_id=member_id, community_id=community_id, state="sent", via="twiml",
            due_at=at, attempts=0, segments=size.segments, encoding=size.name, created_at=at, updated_at=at,
            sent_at=at,
        ))
    session.connection().execute(_RECORD_REPLIES, rows)
    return sum(row["segments"] for row in rows)


# With RETURNING, SQLAlchemy sends the rows as one multi-row INSERT ("insertmanyvalues"), compiled
# once; without it, the driver runs one INSERT per row.
_RECORD_REPLIES = insert(OutboundMessage.__table__).returning(OutboundMessage.__table__.c.id)


def _stage(session: Session, row: OutboundMessage) -> None:
    """Hold the row's send until its transaction commits, noting the savepoint it was written in."""
    if isinstance(session, scoped_session):
        session = session()
    written_in = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(STAGED, []).append(((row.id, row.queue, row.to_number), written_in))


def take_staged(session: Session) -> list[tuple[int, str, str]]:
    """The sends this session staged, emptied, as (outbox id, queue, recipient) in the order they
    were written; called when the outermost transaction ends."""
    return [send for send, _ in session.info.pop(STAGED, [])]


def savepoint_rolled_back(session: Session) -> None:
    """The innermost savepoint is being rolled back: drop the sends written in it, as their rows are
    gone. That includes sends of savepoints inside it, released or not (SQLAlchemy closes one still
    open without telling anyone); a released savepoint's sends otherwise wait for the outermost commit.
    """
    savepoint = session.get_nested_transaction()
    session.info[STAGED] = [(send, t) for send, t in session.info.get(STAGED, []) if not _inside(t, savepoint)]


def _inside(transaction, savepoint) -> bool:
    """Whether `transaction` is `savepoint` or a savepoint within it."""
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False
