"""POST /twilio/voice: every caller hears that the number takes texts, and the crisis contacts."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

import pytest
from sqlalchemy import func, select

from service.calls import spoken
from service.directory import update_community
from service.models import AuditEvent, InboundMessage, OutboundMessage


def call_form(from_number: str = "+447700900123", to: str = "+441632960000") -> dict:
    return {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "1" * 32, "From": from_number, "To": to,
            "CallStatus": "ringing", "Direction": "inbound"}


def said(response) -> list[str]:
    root = ElementTree.fromstring(response.get_data(as_text=True))
    return [element.text for element in root.iter("Say")]


def counts(session) -> list[int]:
    return [session.scalar(select(func.count()).select_from(model))
            for model in (InboundMessage, OutboundMessage, AuditEvent)]


def test_a_member_who_calls_hears_the_crisis_lines_digit_by_digit(post_signed, member, session):
    before = counts(session)
    response = post_signed("/twilio/voice", call_form())
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    words = said(response)
    assert len(words) == 2
    assert words[0].startswith("This number takes text messages only.")
    assert "Samaritans, call 1 1 6, 1 2 3, free, day and night." in words[0]
    assert "Emergency, call 9 9 9 or go to A and E, if a life is at risk." in words[0]
    assert "<Hangup />" in response.get_data(as_text=True)
    assert counts(session) == before  # nothing is stored or sent for a call


def test_a_stranger_hears_the_same_words_as_a_member(post_signed, member):
    heard = said(post_signed("/twilio/voice", call_form()))
    assert said(post_signed("/twilio/voice", call_form(from_number="+447700900999"))) == heard
    assert said(post_signed("/twilio/voice", call_form(from_number="anonymous"))) == heard


def test_the_community_s_own_crisis_contacts_are_read(post_signed, community, session):
    community.crisis_contacts = [{"name": "The Oak House night line", "how": "call 0113 496 0000", "when": ""}]
    session.commit()
    words = said(post_signed("/twilio/voice", call_form()))[0]
    assert "The Oak House night line, call 0, 1, 1, 3, 4, 9, 6, 0, 0, 0, 0." not in words
    assert "The Oak House night line, call 0 1 1 3, 4 9 6, 0 0 0 0." in words
    assert "Samaritans" not in words


def test_a_call_to_a_number_no_community_has_hears_the_uk_lines(post_signed, session):
    words = said(post_signed("/twilio/voice", call_form(to="+441632960999")))[0]
    assert "Samaritans, call 1 1 6, 1 2 3" in words


def test_with_the_database_down_a_caller_still_hears_the_uk_lines(post_signed, app, community, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import service.calls

    def down(session, number):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(service.calls, "community_for_number", down)
    response = post_signed("/twilio/voice", call_form())
    assert response.status_code == 200
    assert "Samaritans, call 1 1 6, 1 2 3" in said(response)[0]


def test_an_unsigned_call_is_refused(client, community):
    assert client.post("/twilio/voice", data=call_form()).status_code == 403


@pytest.mark.parametrize("field, value, reason", [
    ("CallSid", None, "missing form field CallSid"),
    ("CallSid", "SM" + "0" * 32, "CallSid is not a call's sid"),
    ("To", "not a number", "To is not a phone number"),
])
def test_a_malformed_call_gets_400_with_a_reason(post_signed, community, field, value, reason):
    form = call_form()
    if value is None:
        del form[field]
    else:
        form[field] = value
    response = post_signed("/twilio/voice", form)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_spoken_reads_numbers_digit_by_digit_and_says_what_a_voice_would_misread():
    assert spoken({"name": "Shout", "how": "text SHOUT to 85258", "when": "free, 24/7"}) == \
        "Shout, text SHOUT to 8 5 2 5 8, free, day and night."
    assert spoken({"name": "NHS 111", "how": "call 111", "when": ""}) == "NHS 1 1 1, call 1 1 1."


def test_a_character_xml_cannot_carry_in_a_crisis_contact_never_breaks_the_answer(post_signed, community, session):
    """A noncharacter pasted into a contact's name (set with `community set`, which takes it) would make
    the TwiML unreadable, and a caller in crisis would hear Twilio's error instead of the lines."""
    update_community(session, community, crisis_contacts=["Oak House\ufffe night line; call 0113 496 0000"])
    session.commit()
    response = post_signed("/twilio/voice", call_form())
    assert response.status_code == 200
    assert "Oak House night line, call 0 1 1 3, 4 9 6, 0 0 0 0." in said(response)[0]
