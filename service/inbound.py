"""An inbound SMS, handled in one transaction: the row, any state change, any replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from .clock import now
from .consent import opt_in, opt_out
from .directory import community_for_number
from .exceptions import InvalidPhone
from .forms import InboundSms
from .keywords import classify
from .models import Community, InboundMessage, Member
from .outbox import queue_message
from .phones import to_e164


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
    inbound_id = _claim_sid(session, sms)
    if inbound_id is None:
        # Seen before (or a copy racing this one, which this waited for): answer as it was answered.
        answer = session.scalar(select(InboundMessage.response).where(InboundMessage.sid == sms.sid))
        session.rollback()
        return answer
    community = community_for_number(session, sms.to_number)
    member = _member_for(session, community, sms.from_number) if community else None
    word = classify(sms.body, opted_out=member is not None and member.status == "opted_out")
    if word in ("opt_out", "opt_in"):
        handling = _consent(session, word, community, member, sms)
    elif member is None:
        handling = _unknown(community)
    else:
        handling = _handle_member(session, word, member, community, sms, converse)
    if member is not None:
        member.last_inbound_at = now()
    community_id = community.id if community else None
    response = _twiml(handling.replies)
    session.execute(update(InboundMessage).where(InboundMessage.id == inbound_id).values(
        community_id=community_id, member_id=member.id if member else None, handled_as=handling.handled_as,
        response=response))
    for index, reply in enumerate(handling.replies):
        queue_message(session, key=f"reply:{sms.sid}:{index}", to=sms.from_number, body=reply,
                      kind="reply", member=member, community_id=community_id, via="twiml")
    session.commit()
    return response


def _claim_sid(session: Session, sms: InboundSms) -> int | None:
    """Record the MessageSid in one statement; None when it was there already."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return session.execute(
        insert(InboundMessage)
        .values(sid=sms.sid, from_number=sms.from_number, to_number=sms.to_number, body=sms.body,
                handled_as="received", response="", received_at=now())
        .on_conflict_do_nothing(index_elements=["sid"])
        .returning(InboundMessage.id)
    ).scalar()


def _member_for(session: Session, community: Community, from_number: str) -> Member | None:
    try:
        number = to_e164(from_number, community.region)
    except InvalidPhone:
        return None
    return session.scalar(
        select(Member).where(Member.community_id == community.id, Member.phone == number).with_for_update()
    )


def _memberships(session: Session, from_number: str, region: str) -> list[Member]:
    """Every membership of this phone, in every community (locked, in id order)."""
    try:
        number = to_e164(from_number, region)
    except InvalidPhone:
        return []
    return list(session.scalars(select(Member).where(Member.phone == number).order_by(Member.id).with_for_update()))


def _consent(session: Session, word: str, community: Community | None, member: Member | None,
             sms: InboundSms) -> Handling:
    """STOP and START from a phone apply to all its memberships: they share the sender number."""
    everyone = _memberships(session, sms.from_number, community.region if community else "GB")
    if not everyone:
        return Handling(f"{word}_unknown")
    change = opt_out if word == "opt_out" else opt_in
    changed = [change(session, m, f"member:{m.id}", f"sms:{sms.sid}") for m in everyone]
    texts = member.community if member else everyone[0].community
    if word == "opt_out":
        # One confirmation, then nothing: a repeated STOP is not answered again.
        return Handling("opt_out", [texts.render(texts.opt_out_reply)]) if any(changed) else Handling("opt_out_repeat")
    return Handling("opt_in", [texts.render(texts.opt_in_reply)])


def _unknown(community: Community | None) -> Handling:
    reply = community.unknown_reply if community else None
    return Handling("unknown", [reply] if reply else [])


def _handle_member(session: Session, word: str | None, member: Member, community: Community, sms: InboundSms,
                   converse) -> Handling:
    if word == "help":
        return Handling("help", [community.render(community.help_text)])
    if not member.reachable:
        return Handling("ignored_opted_out")
    if converse is not None:
        return converse(session, member, community, sms)
    return Handling("help_fallback", [community.render(community.help_text)])


def _twiml(replies: list[str]) -> str:
    response = MessagingResponse()
    for reply in replies:
        response.message(reply)
    return str(response)
