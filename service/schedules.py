"""The clock's schedule pass: start scheduled flows (the daily check-in) for every member who should get them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flows import next_occurrence

from .clock import MISSED_AFTER, now
from .conversations import active_conversation, start_flow
from .models import Community, Member, Schedule

BUSY_WINDOW = timedelta(hours=1)
log = logging.getLogger("hearth.schedules")


def run_schedules(session: Session) -> dict[str, int]:
    """Create missing schedule rows, then run each due one once (row-locked) and move it on.

    A row's due time was worked out from the flow's times in the community's timezone. When
    either has changed since, it is worked out again rather than run; and a run closer to the
    last one than half the schedule's own spacing (10:00 today, then 14:00 after the time moved,
    or 10:00 in the new zone) is skipped: a member is not checked in twice for one slot.
    """
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
        if flow is None or not flow.triggers.schedules:
            session.delete(schedule)  # the flow is gone, or no longer scheduled
        elif next_occurrence(flow, occurrence - timedelta(seconds=1), community.timezone) != occurrence:
            schedule.next_due_at = next_occurrence(flow, at, community.timezone)
        else:
            if _too_soon(flow, community, schedule.last_run_at, occurrence):
                log.info("schedule %s (%s) ran at %s, too close to %s to run again", schedule.id, flow.id,
                         schedule.last_run_at.isoformat(), occurrence.isoformat())
            elif occurrence >= at - MISSED_AFTER:
                started += start_for_members(session, library, community, flow, {},
                                             f"schedule:{schedule.id}:{occurrence:%Y%m%dT%H%M}")[0]
                schedule.last_run_at = occurrence
            else:
                log.warning("schedule %s (%s) missed its run at %s; not replaying it late", schedule.id, flow.id,
                            occurrence.isoformat())
            following = next_occurrence(flow, max(occurrence, at), community.timezone)
            if following is None:
                session.delete(schedule)
            else:
                schedule.next_due_at = following
        session.commit()
    session.rollback()
    return {"scheduled_starts": started}


def _too_soon(flow, community: Community, last_run_at: datetime | None, occurrence: datetime) -> bool:
    """Whether the last run is nearer `occurrence` than half the gap to the run after it."""
    if last_run_at is None:
        return False
    following = next_occurrence(flow, occurrence, community.timezone)
    return following is not None and occurrence - last_run_at < (following - occurrence) / 2


def _ensure_schedules(session: Session, library, at: datetime) -> None:
    known = set(session.execute(select(Schedule.community_id, Schedule.flow_id)).all())
    for community in session.scalars(select(Community)):
        for flow in library.registry.scheduled():
            if (community.id, flow.id) not in known:
                due = next_occurrence(flow, at, community.timezone)
                if due is not None:
                    session.add(Schedule(community_id=community.id, flow_id=flow.id, next_due_at=due))
    session.commit()


def start_for_members(session: Session, library, community: Community, flow, params: dict, origin: str,
                      phones: list[str] | None = None) -> tuple[int, int]:
    """Start `flow` for each member who may get it; returns (started, skipped as busy in another flow).

    Opted-out, departed, paused and bad-number members are left out. A member who was in an
    exchange in the last BUSY_WINDOW is skipped rather than cut off; an older conversation (a vote
    left open, a forgotten question) is ended as interrupted. `origin` makes each outbox key unique.
    """
    at = now()
    query = select(Member).where(
        Member.community_id == community.id, Member.status.in_(("active", "paused")),
        or_(Member.paused_until.is_(None), Member.paused_until <= at),
    )
    if phones is not None:
        query = query.where(Member.phone.in_(phones))
    started = skipped = 0
    for member_id in session.scalars(query.with_only_columns(Member.id).order_by(Member.id)).all():
        # The member is locked before their conversation, in the same order as the webhook.
        member = session.scalar(select(Member).where(Member.id == member_id).with_for_update()
                                .execution_options(populate_existing=True))
        if member.fields and member.fields.get("phone_error"):
            continue
        current = active_conversation(session, member)
        if current is not None and current.updated_at > at - BUSY_WINDOW:
            skipped += 1
            continue
        if member.status == "paused":
            member.status = "active"  # the pause has run out
        try:
            with session.begin_nested():
                start_flow(session, library, member, community, flow, params, f"{origin}:{member.id}",
                           current=current)
        except Exception:
            log.exception("could not start %s for member %s", flow.id, member.id)
            continue
        started += 1
    return started, skipped
