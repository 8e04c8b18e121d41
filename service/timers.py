"""The clock's timer pass: resume conversations whose reminder, no-answer wait or expiry is due."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import now
from .conversations import resume_flow, timeout_input
from .models import Community, Conversation, Member, Timer

BATCH = 200


def fire_due_timers(session: Session, limit: int = BATCH) -> dict[str, int]:
    """Fire due timers, each in its own transaction; several clocks skip each other's rows."""
    library = current_app.extensions["hearth_flows"]
    fired = 0
    for _ in range(limit):
        timer = session.scalar(
            select(Timer).where(Timer.fired_at.is_(None), Timer.due_at <= now())
            .order_by(Timer.due_at).limit(1).with_for_update(skip_locked=True)
        )
        if timer is None:
            break
        timer.fired_at = now()
        conversation = session.get(Conversation, timer.conversation_id)
        if conversation is not None and conversation.active:
            member = session.get(Member, conversation.member_id, with_for_update=True)
            if member.reachable:
                community = session.get(Community, member.community_id)
                resume_flow(session, library, member, community, conversation, timeout_input(timer),
                            f"timer:{timer.id}")
        session.commit()
        fired += 1
    session.rollback()
    return {"timers": fired}
