"""An inbound text from a member, given to flows: a keyword starts one, else the flow in progress resumes."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import flows
from flows import Message, fold, keyword_params

from .clock import now
from .conversations import active_conversation, context, resume_flow, start_flow, waits_behind
from .forms import InboundSms
from .inbound import Handling
from .models import Alert, Community, InboundMessage, Member
from .timers import overdue_before_text

# How long a text that repeats the member's last one is still taken as that one again (`_repeats_answer`).
REPEAT_WINDOW = timedelta(hours=1)


def converse(session: Session, member: Member, community: Community, sms: InboundSms) -> Handling:
    """Run the member's flows for one text; the engine's messages become the TwiML reply."""
    library = current_app.extensions["hearth_flows"]
    origin = f"reply:{sms.sid}"
    conversation = active_conversation(session, member)
    overdue = overdue_before_text(session, library, member, community, conversation, sms.sid) if conversation else []
    if conversation is not None and not conversation.active:  # its time was up: the text is read afresh
        conversation = active_conversation(session, member)
        if conversation is not None and not _command(library, member, community, sms):
            # A flow that waited behind the one whose time was up is back: the text was meant for
            # the other ("4" to yesterday's check-in), so this one asks its question again
            # rather than take the text as its answer (a vote for 4).
            said, asked = _ask_again(session, library, member, community, conversation, sms.sid)
            if asked:
                return Handling(f"flow:{conversation.flow_id}", overdue + said + [asked])
            overdue += said
            if not conversation.active:  # it closed meanwhile: the text is read afresh
                conversation = active_conversation(session, member)
    handling = _converse(session, library, member, community, sms, conversation, origin)
    handling.replies[:0] = overdue
    if (conversation is not None and not conversation.active and not handling.alerted and member.status == "active"
            and not _raised_an_alert(session, conversation)):
        # The text ended the flow in front (or started one over it): a flow that waited behind
        # it asks its question again, last seen before the other's. Not after an alert, where
        # the member was told the team knows (by this text, or earlier in the flow it ended: a
        # check-in at 1 of 5, then its note), nor after a pause.
        woken = active_conversation(session, member)
        if woken is not None and not woken.origin.startswith(origin):  # none, or one this text started
            said, asked = _ask_again(session, library, member, community, woken, sms.sid)
            handling.replies += said + ([asked] if asked else [])
    return handling


def _raised_an_alert(session: Session, conversation) -> bool:
    return conversation.id is not None and session.scalar(
        select(exists().where(Alert.conversation_id == conversation.id)))


def _command(library, member: Member, community: Community, sms: InboundSms):
    return library.registry.command(sms.body, member.language or community.language, None)


def _ask_again(session: Session, library, member: Member, community: Community, woken,
               sid: str) -> tuple[list[str], str | None]:
    """What a conversation that is back in progress says now: what its timers that fell due
    meanwhile say (a vote that closed while it waited closes now), and its question, if it is
    still in progress and asks one."""
    said = overdue_before_text(session, library, member, community, woken, sid)
    if not woken.active:
        return said, None
    return said, flows.question(library.version(session, woken.flow_digest), woken.state, context(member, community))


def _converse(session: Session, library, member: Member, community: Community, sms: InboundSms, conversation,
              origin: str) -> Handling:
    active = library.version(session, conversation.flow_digest) if conversation else None
    # A facilitator's flow (an open vote) waits behind any flow a keyword starts, so any may start;
    # so may any over a flow that asks nothing now (a check-in listening for a late answer).
    holding = (active if active is not None and not waits_behind(active)
               and flows.awaits_answer(active, conversation.state) else None)
    command = library.registry.command(sms.body, member.language or community.language, holding)
    if command is not None:
        keyword_flow, params = command
        # MENU over a flow that only listens holds it, as the catch-all does for any other text.
        hold = (keyword_flow is library.registry.catch_all and conversation is not None
                and flows.only_listens(active, conversation.state))
        turn = start_flow(session, library, member, community, keyword_flow, params, origin, current=conversation,
                          hold=hold)
        return Handling(f"flow:{keyword_flow.id}", turn.sent, bool(turn.alerts))
    catch_all = library.registry.catch_all
    if conversation is not None and not _repeats_answer(session, member, conversation, active, sms, catch_all):
        turn = resume_flow(session, library, member, community, conversation, Message(sms.body), origin)
        if turn.taken or catch_all is None:
            return Handling(f"flow:{conversation.flow_id}", turn.sent, bool(turn.alerts))
        # A flow that only listens (an open vote for a changed vote, a check-in for a late answer)
        # given a text that is none ("Can someone call me?"): the catch-all answers it, as with no
        # flow, and the flow waits behind it meanwhile.
    if catch_all is not None:
        live = conversation if conversation is not None and conversation.active else None  # not one just ended
        turn = start_flow(session, library, member, community, catch_all, keyword_params(sms.body), origin,
                          current=live, hold=live is not None)
        return Handling(f"flow:{catch_all.id}", turn.sent, bool(turn.alerts))
    return Handling("help_fallback", [community.render(community.help_text)])


def _repeats_answer(session: Session, member: Member, conversation, flow, sms: InboundSms, catch_all) -> bool:
    """Whether a flow that only listens (a vote already cast) leaves this text alone, as one it does
    not take: it repeats, within REPEAT_WINDOW, the member's last text that a flow took, and another
    flow took it (YES again after the YES that finished a meeting RSVP the vote waited behind). The
    member is answering that flow again, not changing their vote; "1" or another option changes it.
    Texts the catch-all answered (a repeat left alone, too) do not count as the last."""
    if flow is None or not flows.only_listens(flow, conversation.state):
        return False
    answered = [f"flow:{catch_all.id}"] if catch_all is not None else []
    last = session.execute(select(InboundMessage.body, InboundMessage.handled_as).where(
        InboundMessage.member_id == member.id, InboundMessage.received_at >= now() - REPEAT_WINDOW,
        InboundMessage.handled_as.not_in(answered))
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(1)).first()
    return (last is not None and last.handled_as.startswith("flow:")
            and last.handled_as != f"flow:{conversation.flow_id}" and fold(last.body) == fold(sms.body))
