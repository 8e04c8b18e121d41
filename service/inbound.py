"""An inbound SMS, handled in one transaction: the row, any state change, any replies."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import bindparam, case, exists, func, select, text
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from .clock import now
from .consent import lock, opt_in, opt_out, phone_works, sharing_sender
from .directory import community_for_number
from .exceptions import InvalidPhone
from .forms import InboundSms
from .keywords import changes_consent, classify
from .models import Community, Conversation, InboundMessage, Member
from .outbox import record_twiml_replies
from .phones import to_e164

log = logging.getLogger(__name__)


@dataclass
class Handling:
    """What Hearth decided to do with one message."""

    handled_as: str
    replies: list[str] = field(default_factory=list)
    alerted: bool = False  # the text raised an alert (a mood of 1, a worrying note)


def handle_sms(session: Session, sms: InboundSms, converse=None) -> str:
    """Handle an inbound SMS and return the TwiML answer; a repeated MessageSid gets the stored answer.

    `converse(session, member, community, sms) -> Handling` runs flows; without it Hearth answers
    with the help text.
    """
    community, member, seen, word, phone = _take_sender(session, sms)
    if seen:
        return _stored_answer(session, sms.sid)
    repaired = phone_works(session, [m for m in (member, *phone) if m is not None], f"sms:{sms.sid}")
    if word in ("opt_out", "opt_in"):
        handling = _consent(session, word, community, member, sms, phone, repaired)
    elif member is None:
        handling = _unknown(community, sms) if _person(sms.from_number) else Handling("automated_sender")
    else:
        handling = _handle_member(session, word, member, community, sms, converse)
    community_id = community.id if community else None
    member_id = member.id if member else None
    replies = [XML_UNSAFE.sub("", reply) for reply in handling.replies]
    response = _twiml(replies)
    if not _record(session, sms, community_id, member_id, handling.handled_as, response):
        # A copy racing this one committed first (this one waited for it): undo this run.
        return _stored_answer(session, sms.sid)
    segments = record_twiml_replies(session, sid=sms.sid, to=sms.from_number, bodies=replies, member_id=member_id,
                                    community_id=community_id)
    session.commit()
    _count_against_the_rate(community, segments)
    return response


def _count_against_the_rate(community: Community | None, segments: int) -> None:
    """The TwiML's replies leave from the number texted, as the workers' sends from it do: they
    count in its send rate limit (`SendRateLimiter.charge`), so that the workers' sends after them
    (but urgent ones) keep to it with them. Without Redis the replies have gone all the same."""
    if not segments:
        return
    sender = (community.phone_number if community else None) or current_app.config["HEARTH"].sender
    try:
        current_app.extensions["hearth_runtime"].limiter.charge(sender, segments)
    except RedisError as exc:
        log.warning("replies from %s not counted in its send rate (%s)", sender, exc)


def _take_sender(session: Session, sms: InboundSms):
    """Lock what the message may change; return (community, member, seen, keyword, the phone's memberships).

    STOP and START change every membership of the phone texted from this number
    (`consent.sharing_sender`): all of them are taken first, in one order, so that two such texts
    to two communities cannot each hold one and wait for the other. YES
    does so only from a member who opted out: once that is known, the locks are given up and
    taken again in that order.
    """
    def read():
        community, member, seen = _sender(session, sms)
        opted_out = member is not None and member.status == "opted_out"
        return community, member, seen, classify(sms.body, opted_out=opted_out)

    phone = _memberships(session, sms) if changes_consent(sms.body) else []
    community, member, seen, word = read()
    if word == "opt_in" and not phone and not seen:
        session.rollback()
        phone = _memberships(session, sms)
        community, member, seen, word = read()
    return community, member, seen, word, phone


def _stored_answer(session: Session, sid: str) -> str:
    """The answer given to this MessageSid before; whatever this transaction did is rolled back."""
    session.rollback()
    answer = session.scalar(select(InboundMessage.response).where(InboundMessage.sid == sid))
    session.rollback()
    return answer


def _record(session: Session, sms: InboundSms, community_id: int | None, member_id: int | None, handled_as: str,
            response: str) -> bool:
    """Store the message with its answer in one statement; False when its MessageSid is stored already.

    The unique sid makes a second copy wait here until the first commits, then find it.
    """
    return session.connection().execute(_RECORD, dict(
        sid=sms.sid, from_number=sms.from_number, to_number=sms.to_number, body=sms.body, community_id=community_id,
        member_id=member_id, handled_as=handled_as, response=response, received_at=now(),
    )).first() is not None


# The webhook runs these for every message: built once, and compiled once. (SQLAlchemy 2.0 caches
# no dialect INSERT ... ON CONFLICT construct; as text, PostgreSQL and SQLite 3.35+ read it alike.)
_RECORD = text(
    "INSERT INTO inbound_messages (sid, community_id, member_id, from_number, to_number, body, handled_as,"
    " response, received_at) VALUES (:sid, :community_id, :member_id, :from_number, :to_number, :body,"
    " :handled_as, :response, :received_at) ON CONFLICT (sid) DO NOTHING RETURNING id"
).bindparams(bindparam("received_at", type_=InboundMessage.__table__.c.received_at.type))
# The member's community among those that text from the number texted: the one whose own number
# it is, or one with none of its own when it is the configured sender (Oak may have been given
# that number as its own while Elm texts from it). A phone in both is the member they still are
# (not left, nor opted out), in the conversation they are having; else the number's own community.
_SENDER = (
    select(Community, Member, exists().where(InboundMessage.sid == bindparam("sid")).label("seen"))
    .join(Member, Member.community_id == Community.id)
    .where(func.coalesce(Community.phone_number, bindparam("shared")) == bindparam("to"),
           Member.phone == bindparam("phone"))
    .order_by(case((Member.status == "left", 2), (Member.status == "opted_out", 1), else_=0),
              ~exists().where(Conversation.member_id == Member.id, Conversation.active),
              Community.phone_number.is_(None), Community.id)
    .limit(1)
    .with_for_update(of=Member)
)


def _sender(session: Session, sms: InboundSms) -> tuple[Community | None, Member | None, bool]:
    """The community this number serves (of those that text from it, the sender's), the member who
    texted it (locked), and whether this sid was handled.

    Twilio sends From in E.164, which is how members are stored: then one query answers all three.
    The member's other rows (their conversation) are read after this, once the lock is held: a
    statement that waited for the lock still sees the other tables as they were when it began.
    """
    if sms.from_number.startswith("+"):
        shared = current_app.config["HEARTH"].twilio_from_number or ""
        found = session.execute(_SENDER, {"to": sms.to_number, "phone": sms.from_number, "sid": sms.sid,
                                          "shared": shared}).first()
        if found is not None:
            return found.Community, found.Member, found.seen
    community = community_for_number(session, sms.to_number)
    member = _member_for(session, community, sms.from_number) if community else None
    # Looked up on its own here: a retried webhook from a number no member has must not use up its
    # answers for the day (`_answers_left`), nor anything else a first copy does.
    return community, member, session.scalar(select(exists().where(InboundMessage.sid == sms.sid)))


def _member_for(session: Session, community: Community, from_number: str) -> Member | None:
    try:
        number = to_e164(from_number, community.region, entered=False)
    except InvalidPhone:
        return None
    return session.scalar(
        select(Member).where(Member.community_id == community.id, Member.phone == number).with_for_update()
    )


def _memberships(session: Session, sms: InboundSms) -> list[Member]:
    """The sender's memberships a STOP or START to this number covers (`consent.sharing_sender`),
    in every community texted from it (locked, in id order)."""
    community = community_for_number(session, sms.to_number)
    region = community.region if community and not sms.from_number.startswith("+") else "GB"
    try:
        number = to_e164(sms.from_number, region, entered=False)
    except InvalidPhone:
        return []
    return lock(session, sharing_sender(number, community))


def _consent(session: Session, word: str, community: Community | None, member: Member | None,
             sms: InboundSms, everyone: list[Member], repaired: bool = False) -> Handling:
    """STOP and START from a phone apply to all its memberships texted from this number (`everyone`);
    `repaired`: the text took a carrier's mark off the phone, which START then brings back."""
    if not everyone:
        return Handling(f"{word}_unknown")
    change = opt_out if word == "opt_out" else opt_in
    changed = [change(session, m, f"member:{m.id}", f"sms:{sms.sid}") for m in everyone]
    texts = member.community if member else everyone[0].community
    if word == "opt_out":
        # One confirmation, then nothing: a repeated STOP is not answered again.
        return Handling("opt_out", [texts.render(texts.opt_out_reply)]) if any(changed) else Handling("opt_out_repeat")
    if not any(changed) and all(m.status == "left" for m in everyone):
        return Handling("opt_in_left")  # "Welcome back" would promise messages that will not come
    if not any(changed) and not repaired:
        # Never away: not "Welcome back" (at every START), but what the service is and how to stop.
        return Handling("opt_in_repeat", [texts.render(texts.help_text)])
    return Handling("opt_in", [texts.render(texts.opt_in_reply)])


def _person(sender: str) -> bool:
    """Whether a sender is a phone a person texts from: not a short code or an alphanumeric sender
    ID, which take no replies (and answering an automated sender can start a loop of texts)."""
    return sender.startswith("+") or (sender.isdigit() and len(sender) > 8)


def _unknown(community: Community | None, sms: InboundSms) -> Handling:
    reply = community.unknown_reply if community else None
    if reply and not _answers_left(sms.from_number, sms.sid):
        return Handling("unknown_unanswered")
    return Handling("unknown", [community.render(reply)] if reply else [])


# How often in a day a number no member has is answered: enough for a person who texted the wrong
# number to see why nothing happens, too few for an auto-responder (or a forged number) to keep
# Hearth answering at the community's cost. Every text is still recorded.
UNKNOWN_REPLIES_A_DAY = 3


def _answers_left(sender: str, sid: str) -> bool:
    """Whether this message may be answered: it is one of the number's first few today (copies of
    one MessageSid, a retry racing the first, count once); without Redis, yes."""
    try:
        return bool(current_app.extensions["hearth_redis"].eval(
            _ANSWER, 1, f"hearth-unknown-answered:{sender}", sid, UNKNOWN_REPLIES_A_DAY, 86400))
    except RedisError:
        return True


# The MessageSids answered (KEYS[1], a set kept for a day from the first): 1 if ARGV[1] is one of
# them or there is room for it among ARGV[2], else 0.
_ANSWER = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 and redis.call('SCARD', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""


def _handle_member(session: Session, word: str | None, member: Member, community: Community, sms: InboundSms,
                   converse) -> Handling:
    if word == "help":
        return Handling("help", [community.render(community.help_text)])
    if not member.reachable:
        return Handling("ignored_opted_out")
    if converse is not None:
        return converse(session, member, community, sms)
    return Handling("help_fallback", [community.render(community.help_text)])


# Characters XML 1.0 cannot carry (a control character a member typed, echoed by a flow, say):
# left in, they would make the whole answer unreadable to Twilio.
XML_UNSAFE = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _twiml(replies: list[str]) -> str:
    response = MessagingResponse()
    for reply in replies:
        response.message(reply)
    return str(response)
