"""Opting out and back in: the one place a member's consent changes, whoever reported it."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from . import audit
from .clock import now
from .models import Community, InboundMessage, Member, OutboundMessage
from .transports.twilio import INVALID_NUMBER, OPTED_OUT


def opt_out(session: Session, member: Member, actor: str, source: str) -> bool:
    """Opt the member out: cancel what is waiting, end the conversation; False if already out."""
    from .conversations import end_active

    if member.status in ("opted_out", "left"):  # one who left stays left: START must not bring them back
        return False
    member.status, member.opted_out_at = "opted_out", now()
    cancel_pending(session, member.id)
    end_active(session, member, "opted_out")
    audit.record(session, actor, "member.opted_out", community_id=member.community_id, member_id=member.id,
                 source=source)
    return True


def opt_in(session: Session, member: Member, actor: str, source: str) -> bool:
    """START: an opted-out member back in with a fresh consent time, a paused one back from their
    pause; False if neither. They asked for messages: a pause kept from before a STOP would leave
    them "active" and sent nothing."""
    was = member.status
    if was not in ("opted_out", "paused"):
        return False
    if was == "opted_out":
        member.consent_at, member.opted_out_at = now(), None
    member.status, member.paused_until = "active", None
    audit.record(session, actor, "member.opted_in" if was == "opted_out" else "member.resumed",
                 community_id=member.community_id, member_id=member.id, source=source)
    return True


PAUSES_PER_TICK = 500


def end_pauses(session: Session, limit: int = PAUSES_PER_TICK) -> dict[str, int]:
    """The clock's pass: members whose pause has run out are active again, so the roster, a
    facilitator's flow and the audit log all see it when it happens, not at the next check-in."""
    due = (select(Member).where(Member.status == "paused", Member.paused_until <= now())
           .order_by(Member.id).limit(limit).with_for_update(skip_locked=True)
           .execution_options(populate_existing=True))
    ended = 0
    for member in session.scalars(due).all():
        pause_ended(session, member, "clock")
        ended += 1
    session.commit()
    return {"pauses_ended": ended}


def pause_ended(session: Session, member: Member, actor: str) -> None:
    """A paused member whose `paused_until` has passed is active again (the date is kept)."""
    member.status = "active"
    audit.record(session, actor, "member.resumed", community_id=member.community_id, member_id=member.id,
                 reason="pause ended")


def cancel_pending(session: Session, member_id: int) -> None:
    """Cancel every outbox row still waiting to go to the member."""
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.member_id == member_id, OutboundMessage.state == "pending")
        .values(state="cancelled", updated_at=now())
    )


def carrier_refused(session: Session, member_id: int | None, code: int | None, source: str,
                    sent_at: datetime | None = None) -> None:
    """What the carrier's refusal of a message to the member says of their phone, from the send's
    answer or a status callback: 21610, it texted STOP to the sender (opted out); 21211 or 21614,
    it cannot take texts (nothing more is sent to it). Any other code says nothing of it. A 21610
    for a message sent (`sent_at`) before a membership's consent was given again says nothing of
    that membership: the STOP it reports came before the START. Nor does a 21211 or 21614 for a
    message sent before the phone last texted Hearth (a late callback): it takes texts.

    An opt-out holds for every membership texted from the same sender, as a STOP texted to Hearth
    does; a number that cannot take texts, for every membership. They are taken in id order, as
    STOP takes them.
    """
    if member_id is None or (code != OPTED_OUT and code not in INVALID_NUMBER):
        return
    refused = session.get(Member, member_id)
    if refused is None:
        return
    if code in INVALID_NUMBER and sent_at is not None and _texted_since(session, refused.phone, sent_at):
        return  # the phone texted Hearth after this message left: it takes texts (`phone_works`)
    scope = sharing_sender(refused.phone, refused.community) if code == OPTED_OUT else memberships(refused.phone)
    for member in lock(session, scope):
        if code == OPTED_OUT:
            if sent_at is None or member.consent_at is None or member.consent_at <= sent_at:
                opt_out(session, member, "carrier", source)
        elif (member.fields or {}).get("phone_error") != code:
            member.fields = {**(member.fields or {}), "phone_error": code}
            audit.record(session, "carrier", "member.phone_invalid", community_id=member.community_id,
                         member_id=member.id, code=code, source=source)


def _texted_since(session: Session, phone: str, at: datetime) -> bool:
    """Whether a text from `phone` reached Hearth after `at`."""
    members = select(Member.id).where(Member.phone == phone)  # by membership: (member_id, received_at) is indexed
    return session.scalar(select(
        select(InboundMessage.id).where(InboundMessage.member_id.in_(members), InboundMessage.received_at > at)
        .exists())) or False


def phone_works(session: Session, texted: list[Member], source: str) -> bool:
    """A text from the phone shows that it takes texts: a carrier's mark that it cannot (21211,
    21614), which `carrier_refused` put on every membership of the phone, is taken off them all,
    or START would say "Welcome back" and send nothing. `texted` are the memberships the text
    reached (locked already); the others are locked only when one of those carries the mark.
    Whether a mark was taken off."""
    if not any((member.fields or {}).get("phone_error") for member in texted):
        return False
    for member in lock(session, memberships(texted[0].phone)):
        fields = dict(member.fields or {})
        code = fields.pop("phone_error", None)
        if code is not None:
            member.fields = fields
            audit.record(session, f"member:{member.id}", "member.phone_valid", community_id=member.community_id,
                         member_id=member.id, was=code, source=source)
    return True


def lock(session: Session, scope: Select) -> list[Member]:
    """Lock the memberships `scope` selects (`memberships`, `sharing_sender`) and return them as they
    are once locked, not as an earlier read in this session left them.

    A statement that waited for a lock read the table as it was when it began: a membership added
    for the phone meanwhile (an import into a community texted from the same number) committed
    while it waited, unseen. A second statement sees and locks it; no other can be added while
    these are held, as adding one locks them first.
    """
    scope = scope.execution_options(populate_existing=True)
    taken = list(session.scalars(scope))
    return list(session.scalars(scope)) if taken else taken


def memberships(phone: str) -> Select:
    """Every membership of a phone, to be locked in id order."""
    return select(Member).where(Member.phone == phone).order_by(Member.id).with_for_update(of=Member)


def sharing_sender(phone: str, community: Community | None) -> Select:
    """The phone's memberships that one consent covers: those texted from the same sender as
    `community` (its own number, else the configured one), as a STOP to a number stops that number.

    With a Messaging Service every community's texts go through it, and the carrier keeps one
    opt-out for the service: then, as for a community not known, every membership.
    """
    config = current_app.config["HEARTH"]
    if community is None or config.twilio_messaging_service_sid:
        return memberships(phone)
    default = config.twilio_from_number or ""
    sender = community.phone_number or default
    return (memberships(phone).join(Community, Community.id == Member.community_id)
            .where(func.coalesce(Community.phone_number, default) == sender))
