"""An inbound call. Hearth does not hold conversations by voice yet, so every caller, member or not,
hears the same short answer: this number takes texts, and where to find help now (the community's
crisis contacts, read aloud). A caller in crisis must never meet silence or Twilio's error message."""

from __future__ import annotations

import logging
import re

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from .database import rerun_if_disconnected
from .directory import community_for_number
from .forms import InboundCall
from .inbound import XML_UNSAFE
from .models.community import UK_CRISIS_CONTACTS

log = logging.getLogger(__name__)

# What a speech engine would misread, as a caller should hear it.
_SAID_AS = {"24/7": "day and night", "A&E": "A and E", "&": "and"}
_DIGITS = re.compile(r"\d+(?: \d+)*")


def answer_call(session: Session, call: InboundCall) -> str:
    """The TwiML that answers a call: the same words for every caller, said twice, then goodbye."""
    try:
        community = rerun_if_disconnected(session, lambda: community_for_number(session, call.to_number))
    except SQLAlchemyError:
        # The database is down: the caller still hears the UK's crisis lines.
        log.exception("call %s: the community could not be read; answering with the UK's crisis lines", call.sid)
        session.rollback()
        community = None
    contacts = community.contacts if community is not None else UK_CRISIS_CONTACTS
    words = XML_UNSAFE.sub("", "This number takes text messages only. If you need to talk to someone now: "
                           + " ".join(spoken(contact) for contact in contacts))
    log.info("call %s to %s answered with the crisis contacts", call.sid, call.to_number)
    response = VoiceResponse()
    response.say(words, language="en-GB")
    response.pause(length=1)
    response.say("Again. " + words, language="en-GB")
    response.hangup()
    return str(response)


def spoken(contact: dict[str, str]) -> str:
    """A crisis contact as a voice says it: numbers digit by digit ("call 1 1 6, 1 2 3"), not as
    amounts ("one hundred and sixteen")."""
    text = ", ".join(part for part in (contact.get("name"), contact.get("how"), contact.get("when")) if part)
    for written, said in _SAID_AS.items():
        text = text.replace(written, said)
    return _DIGITS.sub(lambda run: ", ".join(" ".join(group) for group in run.group().split()), text) + "."
