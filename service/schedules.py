"""The clock's schedule pass: start scheduled flows (the daily check-in) for every member who should get them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from flows import awaits_answer, next_occurrence, only_listens, previous_occurrence

from .clock import MISSED_AFTER, missed, now
from .consent import pause_ended
from .database import conflict, running_again
from .dispatch import sends_held
from .conversations import Turn, active_conversation, start_flow, waits_behind
from .models import Community, Conversation, Member, Schedule, Timer
from .outbox import welcome_now

BUSY_WINDOW = timedelta(hours=1)
# A scheduled run tries again this often for members who were busy, while its messages would still
# go within MISSED_AFTER of the slot (with a margin for the queue), and not into quiet hours.
RETRY_EVERY = timedelta(minutes=10)
RETRY_MARGIN = timedelta(minutes=5)
log = logging.getLogger("hearth.schedules")


def run_schedules(session: Session) -> dict[str, int]:
    """Bring the schedule rows up to date, then run each due one once (row-locked) and move it on.

    A run is skipped when the last one was nearer to it than to the slot before it: that run
    already stood for this slot, under the flow's times or the community's timezone as they were
    (10:00 today, then 14:00 today after the time moved, or 10:00 in the new zone).
    """
    library = current_app.extensions["hearth_flows"]
    at = now()
    _ensure_schedules(session, library, at)
    started, behind = 0, []
    while True:
        schedule = session.scalar(select(Schedule).where(
            Schedule.next_due_at <= at, Schedule.id.not_in(behind),
            or_(Schedule.retry_at.is_(None), Schedule.retry_at <= at)).limit(1).with_for_update(skip_locked=True))
        if schedule is None:
            break
        if _timers_behind(session, schedule):
            behind.append(schedule.id)  # the timer pass catches up first, a tick or a few
            continue
        community = session.get(Community, schedule.community_id)
        flow = library.get(schedule.flow_id)
        occurrence, since = schedule.next_due_at, at
        if _ran_for(flow, community, schedule.last_run_at, occurrence):
            log.info("schedule %s (%s): its run at %s stood for %s already", schedule.id, flow.id,
                     schedule.last_run_at.isoformat(), occurrence.isoformat())
        elif not missed(occurrence, at):
            begun, busy = start_for_members(session, library, community, flow, {},
                                            f"schedule:{schedule.id}:{occurrence:%Y%m%dT%H%M}", due_at=occurrence)
            started += begun
            retry = _retry_at(community, occurrence, at) if busy else None
            if retry is not None:
                # Members in an exchange (a vote's question just sent) get it when that is over, in
                # the slot's hour; those already started are skipped by their conversation's origin.
                schedule.retry_at = retry
                session.commit()
                continue
            if busy:
                log.warning("schedule %s (%s): %d member(s) were busy all through the hour after %s, or"
                            " until quiet hours; they miss this run", schedule.id, flow.id, len(busy),
                            occurrence.isoformat())
            schedule.last_run_at = occurrence
        else:
            log.warning("schedule %s (%s) missed its run at %s; not replaying it late", schedule.id, flow.id,
                        occurrence.isoformat())
            # A slot since then that is still within the hour (the clock was down for days and is
            # back at 10:30) runs now, in this pass, as after a short outage.
            since = at - MISSED_AFTER
        following = next_occurrence(flow, max(occurrence, since), community.timezone)
        schedule.retry_at = None
        if following is None:
            session.delete(schedule)
        else:
            schedule.next_due_at = following
        session.commit()
    session.rollback()
    return {"scheduled_starts": started}


def _retry_at(community: Community, occurrence: datetime, at: datetime) -> datetime | None:
    """When a run tries its busy members again: in RETRY_EVERY, while its messages would still go
    within MISSED_AFTER of the slot (with a margin for the queue), and not in quiet hours the slot
    itself is not in (a 20:30 check-in is not sent at 21:10). None when it does not."""
    retry = at + RETRY_EVERY
    if retry > occurrence + MISSED_AFTER - RETRY_MARGIN:
        return None
    if community.quiet_until(retry) is not None and community.quiet_until(occurrence) is None:
        return None
    return retry


def _timers_behind(session: Session, schedule: Schedule) -> bool:
    """Whether a timer of the community's due before this run is still to fire (the clock was down,
    and its timer pass takes a batch a tick): yesterday's check-in must close, and save its
    "no answer", before today's replaces it."""
    return session.scalar(
        select(Timer.id).join(Conversation, Conversation.id == Timer.conversation_id)
        .join(Member, Member.id == Conversation.member_id)
        .where(Member.community_id == schedule.community_id, Timer.fired_at.is_(None),
               Timer.due_at <= schedule.next_due_at).limit(1)) is not None


def _ran_for(flow, community: Community, last_run_at: datetime | None, occurrence: datetime) -> bool:
    """Whether the last run was for this slot: after the slot before it, and nearer to this one."""
    before = previous_occurrence(flow, occurrence, community.timezone)
    if last_run_at is None or before is None or last_run_at <= before:
        return False
    return occurrence - last_run_at < last_run_at - before


def _ensure_schedules(session: Session, library, at: datetime) -> None:
    """A row for each community and scheduled flow, due at the flow's next time in the community's
    zone. A row whose due time is no longer one of those times (the flow's times changed, or the
    community's timezone) is worked out again from now; a flow no longer scheduled loses its rows.
    """
    scheduled = {flow.id: flow for flow in library.registry.scheduled()}
    communities = {community.id: community for community in session.scalars(select(Community))}
    rows = {(row.community_id, row.flow_id): row for row in session.scalars(select(Schedule))}
    for (community_id, flow_id), row in rows.items():
        flow, zone = scheduled.get(flow_id), communities[community_id].timezone
        if flow is None:
            session.delete(row)
        elif next_occurrence(flow, row.next_due_at - timedelta(seconds=1), zone) != row.next_due_at:
            # From as far back as a run may still be made: a slot of the new times that went by a
            # moment ago still runs today (`_ran_for` keeps it from running twice).
            due = next_occurrence(flow, at - MISSED_AFTER, zone)
            if due is None:
                session.delete(row)
            else:
                row.next_due_at = due
    for community in communities.values():
        for flow in scheduled.values():
            if (community.id, flow.id) not in rows:
                due = next_occurrence(flow, at, community.timezone)
                if due is not None:
                    session.execute(_NEW_SCHEDULE, {"community_id": community.id, "flow_id": flow.id,
                                                    "next_due_at": due})
    session.commit()


# Two clocks may both find a new community without its row: the second to write it keeps the
# first's (on PostgreSQL its insert waits for the first to commit), and this pass runs on that row.
_NEW_SCHEDULE = text(
    "INSERT INTO schedules (community_id, flow_id, next_due_at) VALUES (:community_id, :flow_id, :next_due_at)"
    " ON CONFLICT (community_id, flow_id) DO NOTHING"
).bindparams(bindparam("next_due_at", type_=Schedule.__table__.c.next_due_at.type))


def start_for_members(session: Session, library, community: Community, flow, params: dict, origin: str,
                      phones: list[str] | None = None,
                      due_at: datetime | None = None) -> tuple[int, list[int]]:
    """Start `flow` for each member who may get it; returns (how many started, the ids of those
    skipped as busy in another flow).

    Each member is locked in turn and their start committed before the next is locked: a run over
    a community of thousands holds one member at a time, so none of them waits for it to answer a
    text, and there is no lock cycle with an import locking the same phones in its own order. It
    commits what the caller had pending with the first member. A member who has a conversation
    from this `origin` already (the run was started again) is left as they are. `due_at` is the
    slot a scheduled run stands for: its messages are late, or not, by it.

    Opted-out, departed, paused and bad-number members are left out, and those who take calls
    (not built yet: they would be asked by text they cannot get, and count as not answering). A
    member who is in an exchange (`_busy`) is skipped rather than cut off; any other conversation
    waits behind the new one if it is a facilitator's (an open vote), else is ended as interrupted
    (a forgotten question). `origin`, with each member's id (`member_origin`), makes each outbox
    key unique.
    """
    at = now()
    query = select(Member).where(
        Member.community_id == community.id, Member.status.in_(("active", "paused")), Member.channel == "sms",
        or_(Member.paused_until.is_(None), Member.paused_until <= at),
    )
    if phones is not None:
        query = query.where(Member.phone.in_(phones))
    with sends_held(session, current_app.extensions["hearth_redis"]):
        return _start_each(session, library, community, flow, params, origin, query, at, due_at)


def _start_each(session, library, community, flow, params, origin, query, at, due_at) -> tuple[int, list[int]]:
    started, busy = 0, []
    for member_id in session.scalars(query.with_only_columns(Member.id).order_by(Member.id)).all():
        try:
            outcome = _start_one(session, library, community, flow, params, origin, query, member_id, at, due_at)
        except DBAPIError as exc:
            if not conflict(exc):
                raise  # the database is down or dropped the connection: the run fails, and its next try goes on
            # A deadlock's victim is rolled back whole, the member's lock too: run again once, locked afresh.
            running_again(exc)
            session.rollback()
            outcome = _start_one(session, library, community, flow, params, origin, query, member_id, at, due_at)
        session.commit()  # their start, or only their lock: the next member is held alone
        started += outcome == "started"
        if outcome == "busy":
            busy.append(member_id)
    return started, busy


def _start_one(session, library, community, flow, params, origin, query, member_id, at, due_at) -> str | None:
    """Start the flow for one member: "started", "busy" (in an exchange), or None (left out)."""
    # The member is locked before their conversation, in the same order as the webhook, by the
    # same query: one locked after a wait is read as it is now, and a PAUSE or STOP that
    # committed meanwhile leaves them out.
    member = session.scalar(query.where(Member.id == member_id).with_for_update()
                            .execution_options(populate_existing=True))
    if member is None or (member.fields and member.fields.get("phone_error")) or _started_from(
            session, member, member_origin(origin, member.id)):
        return None
    current = active_conversation(session, member)
    if current is not None and _busy(session, library, current, at):
        return "busy"
    if member.status == "paused":  # it ran out since the clock's last pass: nobody ended it
        pause_ended(session, member, "clock")
    try:
        with session.begin_nested():
            welcome_now(session, member, "bulk")  # the queue the flow's messages go on (`conversations._apply`)
            start_flow(session, library, member, community, flow, params, member_origin(origin, member.id),
                       Turn(due_at=due_at), current=current)
    except Exception as exc:
        if conflict(exc):
            raise  # a deadlock's victim or a serialization failure: `_start_each` runs the member again
        log.exception("could not start %s for member %s", flow.id, member.id)
        return None
    return "started"


def _busy(session: Session, library, current: Conversation, at: datetime) -> bool:
    """Whether the member is in an exchange a new flow must not cut into: their own flow active in
    the last BUSY_WINDOW; or a facilitator's flow (which would wait behind the new one) whose
    question, asked in the last BUSY_WINDOW, is still to be answered, so that the answer goes to
    it and not to the new flow's question. One only listening (a vote already cast, a check-in
    waiting for a late answer) is no exchange, nor is a text it did not take (that leaves the
    conversation as it was). A scheduled run tries a busy member again (`run_schedules`)."""
    if current.updated_at <= at - BUSY_WINDOW:
        return False
    flow = library.version(session, current.flow_digest)
    if flow is None:
        return False  # its flow no longer loads: it cannot go on, and the start ends it (`start_flow`)
    if awaits_answer(flow, current.state):
        return True
    # A member's own flow that has stopped asking and only listens (a check-in waiting for a late
    # answer) is no exchange either: the new flow ends it.
    return not waits_behind(flow) and not only_listens(flow, current.state)


def member_origin(origin: str, member_id: int) -> str:
    """The origin of one member's conversation in a run started from `origin`."""
    return f"{origin}:{member_id}"


def _started_from(session: Session, member: Member, origin: str) -> bool:
    return session.scalar(select(Conversation.id).where(Conversation.member_id == member.id,
                                                        Conversation.origin == origin).limit(1)) is not None

