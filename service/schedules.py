"""The clock's schedule pass: start scheduled flows (the daily check-in) for every member who should get them."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flows import next_occurrence

from .clock import now
from .conversations import active_conversation, start_flow
from .models import Community, Member, Schedule


def run_schedules(session: Session) -> dict[str, int]:
    """Create missing schedule rows, then run each due one once (row-locked) and move it on."""
    library = current_app.extensions["hearth_flows"]
    at = now()
    _ensure_schedules(session, library, at)
    started = 0
    while True:
        schedule = session.scalar(select(Schedule).where(Schedule.next_due_at <= at).limit(1)
                                  .with_for_update(skip_locked=True))
        if schedule is None:
            break
        community = session.get(Community, schedule.community_id)
        flow = library.get(schedule.flow_id)
        occurrence = schedule.next_due_at
        if flow is not None:
            started += _start_for_members(session, library, community, flow, schedule, occurrence, at)
            following = next_occurrence(flow, max(occurrence, at), community.timezone)
        else:
            following = None
        schedule.last_run_at = occurrence
        if following is None:
            session.delete(schedule)
        else:
            schedule.next_due_at = following
        session.commit()
    session.rollback()
    return {"scheduled_starts": started}


def _ensure_schedules(session: Session, library, at: datetime) -> None:
    known = set(session.execute(select(Schedule.community_id, Schedule.flow_id)).all())
    for community in session.scalars(select(Community)):
        for flow in library.registry.scheduled():
            if (community.id, flow.id) not in known:
                due = next_occurrence(flow, at, community.timezone)
                if due is not None:
                    session.add(Schedule(community_id=community.id, flow_id=flow.id, next_due_at=due))
    session.commit()


def _start_for_members(session: Session, library, community: Community, flow, schedule: Schedule,
                       occurrence: datetime, at: datetime) -> int:
    members = session.scalars(select(Member).where(
        Member.community_id == community.id, Member.status.in_(("active", "paused")),
        or_(Member.paused_until.is_(None), Member.paused_until <= at),
    ).order_by(Member.id)).all()
    started = 0
    for member in members:
        if member.fields and member.fields.get("phone_error"):
            continue
        if active_conversation(session, member) is not None:
            continue  # never cut into a conversation in progress
        if member.status == "paused":
            member.status = "active"  # the pause has run out
        start_flow(session, library, member, community, flow, {},
                   f"schedule:{schedule.id}:{occurrence:%Y%m%dT%H%M}")
        started += 1
    return started
