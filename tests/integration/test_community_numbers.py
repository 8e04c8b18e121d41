"""Communities with numbers of their own: each texts from its number, its members reply to it, and
a STOP to a number stops the texts from that number."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from service import create_app
from service.consent import carrier_refused
from service.database import db
from service.directory import add_member, create_community
from service.models import Member, OutboundMessage
from service.sending import deliver
from service.twilio_double import TwilioDouble
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support import sign, sms_form, twiml_messages

DEFAULT_SENDER = "+441632960000"  # TWILIO_FROM_NUMBER in the tests' configuration
ELM_NUMBER = "+441632960001"


@pytest.fixture
def double():
    with TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False) as double:
        yield double


def make_app(config, clock, double, **changes):
    config = dataclasses.replace(config, transport="twilio", twilio_api_base=double.url, send_rate=5, **changes)
    return create_app(config, overrides={"TESTING": True, "CLOCK": clock})


@pytest.fixture
def app(config, clock, double):
    app = make_app(config, clock, double)
    yield app
    app.extensions["hearth_db"].engine.dispose()


@pytest.fixture
def alex(session):
    """Alex is a member of Oak House (whose number is the configured sender), of Ash House (no number
    of its own: it texts from the configured sender too) and of Elm House (a number of its own)."""
    oak = create_community(session, "Oak House", "Europe/London", phone_number=DEFAULT_SENDER)
    ash = create_community(session, "Ash House", "Europe/London")
    elm = create_community(session, "Elm House", "Europe/London", phone_number=ELM_NUMBER)
    memberships = [add_member(session, community, "Alex", "07700 900123") for community in (oak, ash, elm)]
    session.commit()
    return memberships


def send_all(app, session) -> None:
    runtime = app.extensions["hearth_runtime"]
    for outbox_id in session.scalars(select(OutboundMessage.id).where(OutboundMessage.state == "pending")).all():
        assert deliver(session, outbox_id, transport=runtime.transport, limiter=runtime.limiter,
                       sender=app.config["HEARTH"].sender, final_attempt=True) == "sent"


def text(app, body: str, to: str) -> list[str]:
    form = sms_form(body, to=to)
    signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
    answer = app.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    return twiml_messages(answer.get_data(as_text=True))


def statuses(session) -> dict[str, str]:
    session.expire_all()
    return {m.community.name: m.status for m in session.scalars(select(Member))}


def test_each_community_texts_from_its_own_number_and_is_rate_limited_as_it(app, session, double, alex):
    limiter = app.extensions["hearth_runtime"].limiter
    limited_as, acquire = [], limiter.acquire
    limiter.acquire = lambda sender, cost=1, alive=None, urgent=False: (limited_as.append(sender)
                                                                          or acquire(sender, cost, alive, urgent))
    send_all(app, session)
    senders = {next(name for name in ("Oak", "Ash", "Elm") if name in m["body"]): m["from"] for m in double.messages}
    assert senders == {"Oak": DEFAULT_SENDER, "Ash": DEFAULT_SENDER, "Elm": ELM_NUMBER}
    assert sorted(limited_as) == sorted([DEFAULT_SENDER, DEFAULT_SENDER, ELM_NUMBER])


def test_a_member_replying_to_their_communitys_number_is_answered_as_its_member(app, session, alex):
    [help_text] = text(app, "HELP", to=ELM_NUMBER)
    assert "Elm House" in help_text


def test_stop_to_a_number_stops_only_what_is_texted_from_it(app, session, alex):
    assert text(app, "STOP", to=ELM_NUMBER)
    assert statuses(session) == {"Oak House": "active", "Ash House": "active", "Elm House": "opted_out"}
    text(app, "STOP", to=DEFAULT_SENDER)
    assert statuses(session) == {"Oak House": "opted_out", "Ash House": "opted_out", "Elm House": "opted_out"}
    text(app, "START", to=ELM_NUMBER)
    assert statuses(session) == {"Oak House": "opted_out", "Ash House": "opted_out", "Elm House": "active"}


def test_with_a_messaging_service_one_stop_covers_every_community(config, clock, double, session, alex):
    app = make_app(config, clock, double, twilio_messaging_service_sid="MG" + "0" * 32)
    try:
        text(app, "STOP", to=ELM_NUMBER)
        assert set(statuses(session).values()) == {"opted_out"}
    finally:
        app.extensions["hearth_db"].engine.dispose()


def test_the_carriers_opt_out_covers_one_sender_and_a_bad_number_every_membership(app, session, alex):
    at_oak, at_ash, at_elm = alex
    with app.app_context():
        carrier_refused(db.session, at_ash.id, 21610, "test")
        db.session.commit()
    assert statuses(session) == {"Oak House": "opted_out", "Ash House": "opted_out", "Elm House": "active"}
    with app.app_context():
        carrier_refused(db.session, at_elm.id, 21211, "test")
        db.session.commit()
    session.expire_all()
    assert [m.fields.get("phone_error") for m in session.scalars(select(Member))] == [21211] * 3


def test_a_membership_that_was_left_stays_left_through_stop_and_start(app, session, alex):
    at_oak, at_ash, _ = alex
    at_ash.status = "left"
    session.commit()
    text(app, "STOP", to=DEFAULT_SENDER)
    text(app, "START", to=DEFAULT_SENDER)
    assert statuses(session) == {"Oak House": "active", "Ash House": "left", "Elm House": "active"}


def test_replies_in_a_webhooks_answer_count_in_the_rate_of_the_number_texted(app, session, alex, redis):
    """HELP to Elm House is answered in the TwiML, from Elm House's number: the workers' next send
    from that number (but an urgent one) waits its turn after it; the configured sender's does not."""
    assert text(app, "HELP", to=ELM_NUMBER)
    assert redis.pttl(f"hearth-send-replied:{ELM_NUMBER}") > 0
    assert redis.pttl(f"hearth-send-replied:{DEFAULT_SENDER}") < 0


def test_a_member_only_of_a_community_without_a_number_is_heard_at_the_shared_number_another_owns(
        app, session, alex):
    """Oak House has the configured sender as its own number, and Ash House, with none of its own,
    texts from it too: Sam, only in Ash House, texts that number and is Ash's member, not unknown."""
    from service.models import Community, InboundMessage

    ash = session.scalar(select(Community).where(Community.name == "Ash House"))
    ash.help_text = "Ash House help: text STOP to stop."
    sam = add_member(session, ash, "Sam", "07700 900456", welcome=False)
    session.commit()

    def sam_texts(body: str) -> tuple[str, list[str]]:
        form = sms_form(body, from_number="+447700900456", to=DEFAULT_SENDER)
        signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
        answer = app.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
        session.expire_all()
        row = session.scalar(select(InboundMessage).where(InboundMessage.sid == form["MessageSid"]))
        assert (row.community_id, row.member_id) == (ash.id, sam.id), body
        return row.handled_as, twiml_messages(answer.get_data(as_text=True))

    assert sam_texts("HELP") == ("help", ["Ash House help: text STOP to stop."])
    assert sam_texts("STOP")[0] == "opt_out"
    assert sam_texts("YES")[0] == "opt_in"
    assert session.get(Member, sam.id).status == "active"
    assert sam_texts("hello")[0] != "unknown"


def test_a_phone_in_both_communities_on_the_shared_number_is_heard_where_it_is_still_a_member(
        app, session, alex):
    """Alex left Oak House (which has the shared number as its own) and is in Ash House (which
    texts from it): Alex's texts to that number are Ash House's, not dropped as from a member who left."""
    from service.models import InboundMessage

    oak, ash, _elm = alex
    oak.status = "left"
    session.commit()
    form = sms_form("HELP", to=DEFAULT_SENDER)
    signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
    answer = app.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    session.expire_all()
    row = session.scalar(select(InboundMessage).where(InboundMessage.sid == form["MessageSid"]))
    assert (row.member_id, row.handled_as) == (ash.id, "help")
    [helped] = twiml_messages(answer.get_data(as_text=True))
    assert helped.startswith("Ash House check-ins")


def test_a_phone_in_both_is_heard_in_the_conversation_it_is_having(app, runner, session, alex):
    """Ash House's vote waits for Alex's answer: "Yes" to the shared number answers it, though
    Oak House has the number as its own."""
    from service.models import InboundMessage, Result

    _oak, ash, _elm = alex
    started = runner.invoke(args=["flows", "start", "vote", "--community", "Ash House", "--param", "question=Film?",
                                  "--param", "options=Yes,No", "--param", "closes_at=2026-11-24T18:00",
                                  "--in-quiet-hours"])
    assert started.exit_code == 0, started.output
    form = sms_form("Yes", to=DEFAULT_SENDER)
    signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
    app.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    session.expire_all()
    row = session.scalar(select(InboundMessage).where(InboundMessage.sid == form["MessageSid"]))
    assert row.member_id == ash.id, row.handled_as
    assert session.scalar(select(Result.value).where(Result.member_id == ash.id)) == "Yes"  # the vote counted
