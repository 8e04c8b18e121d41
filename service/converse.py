"""An inbound text from a member, given to flows: a keyword starts one, else the flow in progress resumes."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session

import flows
from flows import Message, keyword_params

from .conversations import active_conversation, context, resume_flow, start_flow, waits_behind
from .forms import InboundSms
from .inbound import Handling
from .models import Community, Member
from .timers import overdue_before_text


def converse(session: Session, member: Member, community: Community, sms: InboundSms) -> Handling:
    """Run the member's flows for one text; the engine's messages become the TwiML reply."""
    library = current_app.extensions["hearth_flows"]
    origin = f"reply:{sms.sid}"
    conversation = active_conversation(session, member)
    overdue = overdue_before_text(session, library, member, community, conversation, sms.sid) if conversation else []
    if conversation is not None and not conversation.active:  # its time was up: the text is read afresh
        conversation = active_conversation(session, member)
    handling = _converse(session, library, member, community, sms, conversation, origin)
    handling.replies[:0] = overdue
    handling.replies += _asked_again(session, library, member, community, conversation, origin)
    return handling


def _asked_again(session: Session, library, member: Member, community: Community, before, origin: str) -> list[str]:
    """The question of a conversation this text woke, asked again: a vote that waited behind the
    check-in the text finished was last seen before the check-in's questions. Only where the
    conversation the text found is over or waits now, so most texts cost no query."""
    if before is None or before.active:
        return []
    woken = active_conversation(session, member)
    if woken is None or woken.origin.startswith(origin):  # none, or one this text started
        return []
    asked = flows.question(library.version(session, woken.flow_digest), woken.state, context(member, community))
    return [asked] if asked else []


def _converse(session: Session, library, member: Member, community: Community, sms: InboundSms, conversation,
              origin: str) -> Handling:
    active = library.version(session, conversation.flow_digest) if conversation else None
    # A facilitator's flow (an open vote) waits behind any flow a keyword starts, so any may start.
    holding = None if waits_behind(active) else active
    command = library.registry.command(sms.body, member.language or community.language, holding)
    if command is not None:
        keyword_flow, params = command
        turn = start_flow(session, library, member, community, keyword_flow, params, origin, current=conversation)
        return Handling(f"flow:{keyword_flow.id}", turn.sent)
    catch_all = library.registry.catch_all
    if conversation is not None:
        turn = resume_flow(session, library, member, community, conversation, Message(sms.body), origin)
        if turn.taken or holding is not None or catch_all is None:
            return Handling(f"flow:{conversation.flow_id}", turn.sent)
        # An open vote listening for a changed vote, given a text that is none ("Can someone call
        # me?"): the catch-all answers it, as with no flow, and the vote waits behind it meanwhile.
    if catch_all is not None:
        turn = start_flow(session, library, member, community, catch_all, keyword_params(sms.body), origin,
                          current=conversation)
        return Handling(f"flow:{catch_all.id}", turn.sent)
    return Handling("help_fallback", [community.render(community.help_text)])
