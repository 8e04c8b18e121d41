"""Opting out and back in: the one place a member's consent changes, whoever reported it."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from . import audit
from .clock import now
from .models import Member, OutboundMessage


def opt_out(session: Session, member: Member, actor: str, source: str) -> bool:
    """Opt the member out: cancel what is waiting, end the conversation; False if already out."""
    from .conversations import end_active

    if member.status == "opted_out":
        return False
    member.status, member.opted_out_at = "opted_out", now()
    cancel_pending(session, member.id)
    end_active(session, member, "opted_out")
    audit.record(session, actor, "member.opted_out", community_id=member.community_id, member_id=member.id,
                 source=source)
    return True


def opt_in(session: Session, member: Member, actor: str, source: str) -> bool:
    """Opt an opted-out member back in with a fresh consent time; False if they were not out."""
    if member.status != "opted_out":
        return False
    member.status, member.consent_at, member.opted_out_at = "active", now(), None
    audit.record(session, actor, "member.opted_in", community_id=member.community_id, member_id=member.id,
                 source=source)
    return True


def cancel_pending(session: Session, member_id: int) -> None:
    """Cancel every outbox row still waiting to go to the member."""
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.member_id == member_id, OutboundMessage.state == "pending")
        .values(state="cancelled", updated_at=now())
    )
