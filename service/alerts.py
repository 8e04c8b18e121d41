"""Telling facilitators of an alert a flow raised: an SMS to whoever is on call, at once."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Alert, Community, Facilitator, Member
from .outbox import queue_message
from .phones import national

log = logging.getLogger("hearth.alerts")


def notify_facilitators(session: Session, community: Community, member: Member, alert: Alert) -> int:
    """Queue the alert to the community's on-call facilitators (every facilitator if none is on
    call) on the crisis queue, quiet hours or not; returns how many it goes to.

    Every severity goes at once: a member who is told "I've let the team know" must be right.
    Acknowledging and escalating are not built yet.
    """
    staff = session.scalars(select(Facilitator).where(Facilitator.community_id == community.id)
                            .order_by(Facilitator.id)).all()
    on_call = [f for f in staff if f.on_call] or staff
    if not on_call:
        log.warning("alert %s in %s reaches nobody: the community has no facilitator", alert.id, community.name)
        return 0
    number = national(member.phone, community.region)
    body = f"Hearth, {community.name} ({alert.severity}): {alert.summary} Their number: {number}"
    for facilitator in on_call:
        queue_message(session, key=f"alert:{alert.id}:{facilitator.id}", to=facilitator.phone, body=body,
                      kind="alert", community_id=community.id)
    return len(on_call)
