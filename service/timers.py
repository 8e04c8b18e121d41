"""The clock's timer pass: resume conversations whose reminder, no-answer wait or expiry is due."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from .clock import missed, now
from .conversations import Turn, end_active, resume_flow, timeout_input
from .database import rerun_if_disconnected
from .models import Community, Conversation, Member, Timer

log = logging.getLogger("hearth.timers")
BATCH = 200


def fire_due_timers(session: Session, limit: int = BATCH) -> dict[str, int]:
    """Fire due timers, each in its own transaction; one that fails is logged and set aside (the
    database failing stops the pass instead, and the next tick fires the timer).

    Locks are taken in the webhook's order (member, then conversation, then timer), so a member
    texting while their reminder fires waits instead of deadlocking or being overwritten.
    """
    library = current_app.extensions["hearth_flows"]
    fired = 0
    # Only timers that existed when the pass began: one a fired timer's turn sets (a flow that waits
    # and loops) waits for the next pass, so no flow can fire itself over and over in one.
    newest = session.scalar(select(func.max(Timer.id)))
    session.rollback()
    for _ in range(limit if newest is not None else 0):
        due = session.execute(
            select(Timer.id, Conversation.member_id).join(Conversation, Conversation.id == Timer.conversation_id)
            .where(Timer.fired_at.is_(None), Timer.due_at <= now(), Timer.id <= newest)
            .order_by(Timer.due_at, Timer.id).limit(1)
        ).first()
        if due is None:
            break
        timer_id, member_id = due
        try:
            # One transaction: a deadlock's victim (or a dropped connection) is run again once.
            fired += rerun_if_disconnected(session, lambda: _fire(session, library, timer_id, member_id))
        except Exception as exc:
            if _database_down(exc):
                raise  # not the timer's fault: the clock's next tick fires it
            session.rollback()
            log.exception("timer %s failed; it will not be tried again", timer_id)
            session.get(Timer, timer_id).fired_at = now()
            session.commit()
    session.rollback()
    return {"timers": fired}


def _fire(session: Session, library, timer_id: int, member_id: int) -> int:
    member = session.scalar(select(Member).where(Member.id == member_id).with_for_update()
                            .execution_options(populate_existing=True))
    timer = session.scalar(select(Timer).where(Timer.id == timer_id, Timer.fired_at.is_(None))
                           .with_for_update(skip_locked=True).execution_options(populate_existing=True))
    if timer is None:
        session.rollback()  # another clock fired it meanwhile
        return 0
    timer.fired_at = now()
    conversation = session.get(Conversation, timer.conversation_id, populate_existing=True)
    waiting = conversation.suspended_at is not None  # behind another flow: it may close, not nudge
    if timer.kind == "reminder" and (waiting or _untimely(timer, member)):
        # A nudge hours late, at night, or about a question the member is not being asked now says
        # nothing useful. What the flow does when no answer comes (its own timer) still happens.
        log.info("timer %s: the reminder due at %s is set aside (late, in quiet hours, or waiting behind"
                 " another flow)", timer.id, timer.due_at.isoformat())
    elif conversation.active or waiting:
        if member.reachable:
            community = session.get(Community, member.community_id)
            resume_flow(session, library, member, community, conversation, timeout_input(timer),
                        f"timer:{timer.kind}:{timer.id}", Turn(due_at=timer.due_at))
        else:
            end_active(session, member, member.status)
    session.commit()
    return 1


def _database_down(exc: Exception) -> bool:
    """Whether a run failed because the database is unreachable, restarting or out of resources,
    which says nothing about the timer (a statement of its own that fails, a deadlock twice, does)."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, (OperationalError, InterfaceError)) and (
        state is None or state.startswith(("08", "53", "57P")))


def _untimely(timer: Timer, member: Member) -> bool:
    """Whether a reminder firing now is too late (the clock was down) or falls in quiet hours."""
    return missed(timer.due_at, timer.fired_at) or member.community.quiet_until(timer.fired_at) is not None


def overdue_before_text(session: Session, library, member: Member, community: Community,
                        conversation: Conversation, sid: str) -> list[str]:
    """Fire the conversation's no-answer and expiry timers that are due but not yet fired (the
    clock is down, or behind), before the member's text is read: a vote that closed at 18:00 is
    closed to a "2" at 18:30, as it would have been. Returns what they say ("Voting has closed"),
    which goes before the answer to the text. The member is locked already (the webhook's lock),
    so the clock cannot fire them meanwhile.
    """
    said: list[str] = []
    due = session.scalars(select(Timer).where(
        Timer.conversation_id == conversation.id, Timer.fired_at.is_(None), Timer.due_at <= now(),
        Timer.kind != "reminder").order_by(Timer.due_at, Timer.id).with_for_update())
    for timer in due.all():
        if not conversation.active:
            break
        timer.fired_at = now()
        said += resume_flow(session, library, member, community, conversation, timeout_input(timer),
                            f"reply:{sid}:timer:{timer.id}").sent
    return said
