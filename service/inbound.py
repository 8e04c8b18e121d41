"""An inbound SMS, handled in one transaction: the row, any state change, any replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from . import audit
from .clock import now
from .directory import community_for_number
from .forms import InboundSms
from .keywords import classify
from .models import Community, InboundMessage, Member, OutboundMessage
from .outbox import queue_message
from .phones import to_e164
from .exceptions import InvalidPhone


@dataclass
class Handling:
    """What Hearth decided to do with one message."""

    handled_as: str
    replies: list[str] = field(default_factory=list)


def handle_sms(session: Session, sms: InboundSms, converse=None) -> str:
    """Handle an inbound SMS and return the TwiML answer; a repeated MessageSid gets the stored answer.

    `converse(session, member, community, sms) -> Handling` runs flows; without it Hearth answers
    with the help text.
    """
    seen = session.scalar(select(InboundMessage).where(InboundMessage.sid == sms.sid))
    if seen is not None:
        return seen.response
    community = community_for_number(session, sms.to_number)
    member = _member_for(session, community, sms.from_number) if community else None
    if member is None:
        handling = _unknown(community)
    else:
        member.last_inbound_at = now()
        handling = _handle_member(session, member, community, sms, converse)
    response = _twiml(handling.replies)
    session.add(InboundMessage(
        sid=sms.sid, community_id=community.id if community else None, member_id=member.id if member else None,
        from_number=sms.from_number, to_number=sms.to_number, body=sms.body, handled_as=handling.handled_as,
        response=response, received_at=now(),
    ))
    for index, reply in enumerate(handling.replies):
        queue_message(session, key=f"reply:{sms.sid}:{index}", to=sms.from_number, body=reply,
                      kind="reply", member=member, community_id=community.id if community else None, via="twiml")
    try:
        session.commit()
    except IntegrityError:
        # The same MessageSid arrived twice at once: the other request won; answer as it did.
        session.rollback()
        return session.scalar(select(InboundMessage.response).where(InboundMessage.sid == sms.sid))
    return response


def _member_for(session: Session, community: Community, from_number: str) -> Member | None:
    try:
        number = to_e164(from_number, community.region)
    except InvalidPhone:
        return None
    return session.scalar(
        select(Member).where(Member.community_id == community.id, Member.phone == number).with_for_update()
    )


def _unknown(community: Community | None) -> Handling:
    reply = community.unknown_reply if community else None
    return Handling("unknown", [reply] if reply else [])


def _handle_member(session: Session, member: Member, community: Community, sms: InboundSms, converse) -> Handling:
    word = classify(sms.body, opted_out=member.status == "opted_out")
    if word == "opt_out":
        return opt_out(session, member, community, source=f"sms:{sms.sid}")
    if word == "opt_in":
        return opt_in(session, member, community, source=f"sms:{sms.sid}")
    if word == "help":
        return Handling("help", [community.render(community.help_text)])
    if not member.reachable:
        return Handling("ignored_opted_out")
    if converse is not None:
        return converse(session, member, community, sms)
    return Handling("help_fallback", [community.render(community.help_text)])


def opt_out(session: Session, member: Member, community: Community, source: str) -> Handling:
    """Opt the member out: one confirmation, then nothing; pending messages are cancelled."""
    if member.status == "opted_out":
        return Handling("opt_out_repeat")
    from .conversations import end_active

    member.status, member.opted_out_at = "opted_out", now()
    cancel_pending(session, member.id)
    end_active(session, member, "opted_out")
    audit.record(session, f"member:{member.id}", "member.opted_out", community_id=community.id,
                 member_id=member.id, source=source)
    return Handling("opt_out", [community.render(community.opt_out_reply)])


def opt_in(session: Session, member: Member, community: Community, source: str) -> Handling:
    """Opt the member back in with a fresh consent time."""
    if member.status == "opted_out":
        member.status, member.consent_at, member.opted_out_at = "active", now(), None
        audit.record(session, f"member:{member.id}", "member.opted_in", community_id=community.id,
                     member_id=member.id, source=source)
    return Handling("opt_in", [community.render(community.opt_in_reply)])


def cancel_pending(session: Session, member_id: int) -> None:
    """Cancel every outbox row still waiting to go to the member."""
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.member_id == member_id, OutboundMessage.state == "pending")
        .values(state="cancelled", updated_at=now())
    )


def _twiml(replies: list[str]) -> str:
    response = MessagingResponse()
    for reply in replies:
        response.message(reply)
    return str(response)
