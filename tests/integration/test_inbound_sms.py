"""POST /twilio/sms against a real database: signatures, malformed forms, replays, opt-out words."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from service.models import AuditEvent, InboundMessage, Member, OutboundMessage
from tests.support import sms_form, twiml_messages

EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def replies(response) -> list[str]:
    return twiml_messages(response.get_data(as_text=True))


def test_unsigned_request_is_refused(client, member, session):
    response = client.post("/twilio/sms", data=sms_form("hello"))
    assert response.status_code == 403
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


def test_signature_for_another_url_or_token_is_refused(post_signed, member):
    assert post_signed("/twilio/sms", sms_form("hi"), token="wrong").status_code == 403
    assert post_signed("/twilio/sms", sms_form("hi"), url="https://elsewhere.example/twilio/sms").status_code == 403


def test_without_an_auth_token_no_webhook_from_outside_validates(config, clock, member, session):
    """A web process deployed without TWILIO_AUTH_TOKEN takes no webhook: its signing token is its
    own, drawn at random, which only `hearth simulate` uses, inside its own process."""
    from service import create_app
    from tests.support import sign

    from service.config import Config

    environ = {"DATABASE_URL": config.database_url, "REDIS_URL": config.redis_url,
               "PUBLIC_BASE_URL": "https://hearth.example.org"}  # and no TWILIO_* at all
    web, other = (create_app(Config.from_env(environ), overrides={"CLOCK": clock}) for _ in range(2))
    url = "https://hearth.example.org/twilio/sms"
    form = sms_form("STOP")
    guesses = ["", "hearth-local-development-token", other.config["HEARTH"].local_signing_token]
    for token in guesses:
        signed = {"X-Twilio-Signature": sign(url, form, token)}
        assert web.test_client().post("/twilio/sms", data=form, headers=signed).status_code == 403, token
    own = sign(url, form, web.config["HEARTH"].local_signing_token)
    assert web.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": own}).status_code == 200
    for app in (web, other):
        app.extensions["hearth_db"].engine.dispose()


def test_a_query_string_that_is_not_utf8_is_refused_not_a_500(client, member):
    # A raw 0xFF byte: WSGI carries the query as latin-1, so this is what a hostile caller can send.
    response = client.post("/twilio/sms", data=sms_form("hi"), headers={"X-Twilio-Signature": "bogus"},
                           environ_overrides={"QUERY_STRING": "a=\xff"})
    assert response.status_code == 403


def test_tampered_body_is_refused(client, member):
    from tests.conftest import AUTH_TOKEN
    from tests.support import sign

    form = sms_form("hello")
    signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
    response = client.post("/twilio/sms", data={**form, "Body": "STOP"}, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


@pytest.mark.parametrize("field, value, reason", [
    ("MessageSid", None, "missing form field MessageSid"),
    ("MessageSid", "not-a-sid", "MessageSid is not a Twilio sid"),
    ("From", None, "missing form field From"),
    ("From", "robert'); drop table", "From is not a phone number"),
    ("Body", None, "missing form field Body"),
    ("To", None, "missing form field To"),
])
def test_malformed_form_gets_400_with_reason(post_signed, member, session, field, value, reason):
    form = sms_form("hello")
    if value is None:
        del form[field]
    else:
        form[field] = value
    response = post_signed("/twilio/sms", form)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


def test_help_answers_with_the_community_help_text(post_signed, member):
    response = post_signed("/twilio/sms", sms_form("help"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    [text] = replies(response)
    assert "Oak House" in text and "STOP" in text


def test_replayed_message_sid_gets_the_same_answer_and_changes_nothing_twice(post_signed, member, session):
    form = sms_form("STOP")
    first = post_signed("/twilio/sms", form)
    second = post_signed("/twilio/sms", form)
    assert first.get_data() == second.get_data()
    assert len(replies(first)) == 1
    assert session.scalar(select(func.count(InboundMessage.id))) == 1
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "member.opted_out")) == 1
    assert session.scalar(select(func.count(OutboundMessage.id))) == 1


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop ", "STOP!", "stopall", "UNSUBSCRIBE", "cancel",
                                  "End.", "quit", "  QUIT  ", "Stop.", "¡stop!", "OPTOUT", "revoke",
                                  "Stop please", "please STOP", "Stop, thanks x"])
def test_every_opt_out_word_opts_out_with_one_confirmation(post_signed, member, session, word):
    [confirmation] = replies(post_signed("/twilio/sms", sms_form(word)))
    assert "no more messages" in confirmation
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"
    # Nothing after it: other texts get no answer, a second STOP no second confirmation.
    assert replies(post_signed("/twilio/sms", sms_form("hello?"))) == []
    assert replies(post_signed("/twilio/sms", sms_form("STOP"))) == []


@pytest.mark.parametrize("word", ["START", "unstop", "Yes", "yes!"])
def test_opt_in_words_bring_an_opted_out_member_back(post_signed, member, session, word):
    post_signed("/twilio/sms", sms_form("STOP"))
    [welcome_back] = replies(post_signed("/twilio/sms", sms_form(word)))
    assert "Welcome back" in welcome_back
    session.expire_all()
    back = session.get(Member, member.id)
    assert back.status == "active" and back.opted_out_at is None


def test_start_from_a_member_who_never_left_is_answered_with_the_help_text(post_signed, member, session, community):
    for _ in range(2):
        [answer] = replies(post_signed("/twilio/sms", sms_form("START")))
        assert "Welcome back" not in answer and answer == community.render(community.help_text)
    assert set(session.scalars(select(InboundMessage.handled_as))) == {"opt_in_repeat"}
    post_signed("/twilio/sms", sms_form("STOP"))
    assert "Welcome back" in replies(post_signed("/twilio/sms", sms_form("START")))[0]


def test_yes_from_an_active_member_is_not_an_opt_in(post_signed, member, session):
    answers = replies(post_signed("/twilio/sms", sms_form("YES")))
    assert answers and not any("Welcome back" in a for a in answers)
    assert session.scalar(select(InboundMessage.handled_as)) != "opt_in"


def test_stop_cancels_messages_still_waiting(post_signed, member, session, clock):
    from service.outbox import queue_message

    queue_message(session, key="later", to=member.phone, body="see you", kind="broadcast", member=member,
                  due_at=clock.advance(hours=1))
    session.commit()
    post_signed("/twilio/sms", sms_form("STOP"))
    session.expire_all()
    assert session.scalar(select(OutboundMessage.state).where(OutboundMessage.idempotency_key == "later")) == "cancelled"


def test_help_works_for_an_opted_out_member(post_signed, member):
    post_signed("/twilio/sms", sms_form("STOP"))
    [text] = replies(post_signed("/twilio/sms", sms_form("INFO")))
    assert "Samaritans" in text


def test_unknown_number_gets_a_neutral_answer_and_is_recorded(post_signed, member, session):
    [answer] = replies(post_signed("/twilio/sms", sms_form("hi", from_number="+447700900999")))
    assert "Oak House" not in answer and "Alex" not in answer
    row = session.scalar(select(InboundMessage))
    assert row.member_id is None and row.handled_as == "unknown" and row.body == "hi"


def test_an_unknown_number_is_answered_three_times_a_day_and_every_text_recorded(post_signed, member, session):
    """An auto-responder (or a forged number) cannot keep Hearth answering at the community's cost."""
    answers = [replies(post_signed("/twilio/sms", sms_form(f"hi {i}", from_number="+447700900999")))
               for i in range(5)]
    assert [len(a) for a in answers] == [1, 1, 1, 0, 0]
    assert session.scalars(select(InboundMessage.handled_as).order_by(InboundMessage.id)).all() == (
        ["unknown"] * 3 + ["unknown_unanswered"] * 2)
    assert len(replies(post_signed("/twilio/sms", sms_form("hi", from_number="+447700900998")))) == 1  # another


def test_a_retried_webhook_from_an_unknown_number_does_not_use_up_its_answers(post_signed, member):
    answered = []
    for i in range(3):
        form = sms_form(f"hi {i}", from_number="+447700900999")
        first = post_signed("/twilio/sms", form)
        assert post_signed("/twilio/sms", form).get_data() == first.get_data()  # Twilio retries the same sid
        answered.append(len(replies(first)))
    assert answered == [1, 1, 1]


def test_copies_of_one_message_from_an_unknown_number_use_one_of_its_answers(app):
    """Twilio's retry can arrive while the first copy is still being handled (neither has stored
    it yet), and a lost connection reruns the handling: each copy asks whether it may be answered,
    and one message uses one answer however many times it asks."""
    from service.inbound import UNKNOWN_REPLIES_A_DAY, _answers_left

    with app.app_context():
        assert all(_answers_left("+447700900999", "SM-first") for _ in range(5))
        assert [_answers_left("+447700900999", f"SM-{i}") for i in range(UNKNOWN_REPLIES_A_DAY)] == [
            True] * (UNKNOWN_REPLIES_A_DAY - 1) + [False]
        assert _answers_left("+447700900999", "SM-first"), "a copy of an answered message is answered again"


def test_start_from_a_member_who_left_is_not_told_welcome_back(post_signed, member, session):
    member.status = "left"
    session.commit()
    assert replies(post_signed("/twilio/sms", sms_form("START"))) == []
    session.expire_all()
    assert session.get(Member, member.id).status == "left"


def test_a_text_from_a_number_the_carrier_called_unusable_clears_the_mark(post_signed, member, session):
    """21211/21614 stop every send to the phone; a text from it shows it takes texts after all, or
    START would say "Welcome back" and nothing would ever come."""
    member.fields = {"phone_error": 21614}
    session.commit()
    assert "Welcome back" in replies(post_signed("/twilio/sms", sms_form("START")))[0]
    session.expire_all()
    assert "phone_error" not in session.get(Member, member.id).fields
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "member.phone_valid"))
    assert event.details["was"] == 21614


def test_a_text_clears_the_carriers_mark_in_every_membership_of_the_phone(post_signed, member, session):
    """The mark was put on every membership (`carrier_refused`); a text to one community shows the
    phone works for all of them."""
    from service.directory import add_member, create_community

    elsewhere = add_member(session, create_community(session, "Elm House"), "Alex", member.phone, welcome=False)
    session.commit()
    ids = (member.id, elsewhere.id)
    for one in (member, elsewhere):
        one.fields = {"phone_error": 21614}
    session.commit()
    assert post_signed("/twilio/sms", sms_form("hello")).status_code == 200
    session.expire_all()
    assert [(session.get(Member, i).fields or {}).get("phone_error") for i in ids] == [None, None]


def test_unknown_number_gets_nothing_when_the_community_says_so(post_signed, community, session):
    community.unknown_reply = None
    session.commit()
    response = post_signed("/twilio/sms", sms_form("hi", from_number="+447700900999"))
    assert response.get_data(as_text=True) == EMPTY


def test_member_found_whatever_format_the_number_arrives_in(post_signed, member, session):
    post_signed("/twilio/sms", sms_form("HELP", from_number="447700900123"))
    assert session.scalar(select(InboundMessage.member_id)) == member.id


def test_anything_else_goes_to_the_flows(post_signed, member, session):
    texts = replies(post_signed("/twilio/sms", sms_form("what is this?")))
    assert any("STOP" in text for text in texts)
    assert session.scalar(select(InboundMessage.handled_as)).startswith("flow:")


def test_inbound_row_reply_and_state_are_written_together(post_signed, member, session):
    post_signed("/twilio/sms", sms_form("STOP", sid="SM" + "a" * 32))
    inbound = session.scalar(select(InboundMessage))
    reply = session.scalar(select(OutboundMessage))
    assert inbound.sid == "SM" + "a" * 32 and "no more messages" in inbound.response
    assert reply.idempotency_key == f"reply:{inbound.sid}:0" and reply.via == "twiml"


@pytest.mark.parametrize("field, value, reason", [
    ("Body", "hello\x00there", "Body contains a NUL character"),
    ("To", "x" * 40, "To is not a phone number"),
])
def test_hostile_values_get_400_not_500(post_signed, member, field, value, reason):
    response = post_signed("/twilio/sms", {**sms_form("hi"), field: value})
    assert response.status_code == 400 and reason in response.get_data(as_text=True)


def test_the_same_message_sid_twice_at_once_is_handled_once(app, member, session):
    import threading

    from tests.conftest import AUTH_TOKEN
    from tests.support import sign

    form = sms_form("STOP")
    headers = {"X-Twilio-Signature": sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)}
    answers = []

    def post():
        answers.append(app.test_client().post("/twilio/sms", data=form, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_data() == answers[1].get_data()
    assert session.scalar(select(func.count(InboundMessage.id))) == 1
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "member.opted_out")) == 1


def test_stop_reaches_every_community_sharing_the_number(post_signed, member, session):
    from service.directory import add_member, create_community

    other = create_community(session, "Elm House", "Europe/London")
    second = add_member(session, other, "Alex", "07700 900123", welcome=False)
    session.commit()
    [confirmation] = replies(post_signed("/twilio/sms", sms_form("STOP")))
    assert "no more messages" in confirmation
    session.expire_all()
    assert {session.get(Member, member.id).status, session.get(Member, second.id).status} == {"opted_out"}


@pytest.mark.parametrize("word", ["START", "YES"])
def test_opting_back_in_reaches_every_community_sharing_the_number(post_signed, member, session, word):
    from service.directory import add_member, create_community

    other = create_community(session, "Elm House", "Europe/London")
    second = add_member(session, other, "Alex", "07700 900123", welcome=False)
    session.commit()
    post_signed("/twilio/sms", sms_form("STOP"))
    [welcome_back] = replies(post_signed("/twilio/sms", sms_form(word)))
    assert "Welcome back" in welcome_back
    session.expire_all()
    assert {session.get(Member, member.id).status, session.get(Member, second.id).status} == {"active"}


def test_stop_from_an_unknown_number_gets_no_answer(post_signed, member):
    assert replies(post_signed("/twilio/sms", sms_form("STOP", from_number="+447700900999"))) == []


@pytest.mark.parametrize(("word", "status"), [("STOP", "opted_out"), ("hello", "active")])
def test_a_member_stored_under_a_number_no_longer_in_use_is_still_found(post_signed, member, session, word, status):
    """Numbers are checked against the ranges in use when entered; a sender is looked up as they come."""
    from sqlalchemy import update

    session.execute(update(Member).where(Member.id == member.id).values(phone="+447700901123"))
    session.commit()
    post_signed("/twilio/sms", sms_form(word, from_number="+447700901123"))
    session.expire_all()
    assert session.get(Member, member.id).status == status
    assert session.scalar(select(InboundMessage.member_id)) == member.id


def test_a_form_larger_than_any_twilio_sends_is_refused_before_it_is_read(client, member, session):
    response = client.post("/twilio/sms", data=b"Body=" + b"x" * 300_000, headers={
        "X-Twilio-Signature": "anything", "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and "Traceback" not in response.get_data(as_text=True)
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
def test_a_form_with_more_fields_than_any_twilio_sends_is_refused_before_its_signature(client, member, session, path):
    form = sms_form("hello") | {f"Extra{i}": "x" for i in range(250)}
    response = client.post(path, data=form, headers={"X-Twilio-Signature": "anything"})
    assert response.status_code == 400
    assert "more than 200 fields" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(InboundMessage.id))) == 0


def test_a_form_as_rich_as_twilios_richest_is_still_taken(post_signed, member, session):
    media = {f"MediaUrl{i}": f"https://api.twilio.example/m/{i}" for i in range(10)}
    media |= {f"MediaContentType{i}": "image/jpeg" for i in range(10)}
    geography = {f"{side}{part}": "X" for side in ("From", "To") for part in ("City", "State", "Zip", "Country")}
    response = post_signed("/twilio/sms", sms_form("hello") | media | geography | {"NumMedia": "10"})
    assert response.status_code == 200
    assert session.scalar(select(func.count(InboundMessage.id))) == 1


@pytest.mark.parametrize("query", ["c=O%27Brien", "c=caf%C3%A9", "c=a%2Fb", "c=b%20c"])
def test_without_public_base_url_the_query_is_signed_as_twilio_was_given_it(config, clock, member, query):
    """Twilio signs the webhook URL as configured, percent-encoded; the request's own URL is read raw."""
    import dataclasses

    from service import create_app
    from tests.conftest import AUTH_TOKEN
    from tests.support import sign

    app = create_app(dataclasses.replace(config, public_base_url=None), overrides={"TESTING": True, "CLOCK": clock})
    form = sms_form("hello")
    signature = sign(f"https://hearth.example.org/twilio/sms?{query}", form, AUTH_TOKEN)
    answer = app.test_client().post(f"/twilio/sms?{query}", data=form, base_url="https://hearth.example.org",
                                    headers={"X-Twilio-Signature": signature})
    app.extensions["hearth_db"].engine.dispose()
    assert answer.status_code == 200, answer.get_data(as_text=True)


@pytest.mark.parametrize("sender", ["VODAFONE", "Bank Alerts", "12345", "60123"])
def test_a_short_code_or_sender_id_is_recorded_and_never_answered(post_signed, member, session, sender):
    for body in ("hello", "HELP", "STOP"):
        response = post_signed("/twilio/sms", sms_form(body, from_number=sender))
        assert response.status_code == 200 and response.get_data(as_text=True) == EMPTY, (sender, body)
    handled = session.scalars(select(InboundMessage.handled_as).order_by(InboundMessage.id)).all()
    assert handled == ["automated_sender", "automated_sender", "opt_out_unknown"]
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0


@pytest.mark.parametrize("before", [["PAUSE 7"], ["PAUSE 7", "STOP"]])
def test_start_after_a_pause_sends_messages_again(post_signed, member, session, before):
    for body in before:
        post_signed("/twilio/sms", sms_form(body))
    session.expire_all()
    assert session.get(Member, member.id).paused_until is not None
    post_signed("/twilio/sms", sms_form("START"))
    session.expire_all()
    again = session.get(Member, member.id)
    assert (again.status, again.paused_until) == ("active", None)


def test_a_refused_signature_is_logged_with_the_url_it_was_checked_against(post_signed, member, caplog):
    """Behind a proxy, a PUBLIC_BASE_URL that is not the URL Twilio was given refuses every text:
    the log names the URL checked, so the operator can compare it with the one set at Twilio."""
    with caplog.at_level(logging.WARNING, logger="service.signature"):
        response = post_signed("/twilio/sms", sms_form("hi"), url="http://hearth.example.org/twilio/sms")
    assert response.status_code == 403
    assert "https://hearth.example.org/twilio/sms" in caplog.text and "does not match" in caplog.text
