"""POST /twilio/status: deduplicated on (sid, status); a status never moves backwards."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from service.forms import StatusCallback
from service.models import AuditEvent, Member, OutboundMessage, StatusEvent
from service.outbox import queue_message
from service.sending import deliver
from service.status import record_status
from service.transports.base import SendResult
from tests.conftest import DATABASE

SID = "SM" + "b" * 32


def status_form(status: str, sid: str = SID, error: str | None = None) -> dict:
    form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": "AC" + "1" * 32, "To": "+447700900123", "From": "+441632960000", "ApiVersion": "2010-04-01"}
    if error:
        form["ErrorCode"] = error
    return form


def sent_row(session, member):
    row = queue_message(session, key="k1", to=member.phone, body="hi", kind="reply", member=member)
    row.state, row.provider_sid, row.delivery_status = "sent", SID, "queued"
    session.commit()
    return row


def delivery_status(session, row):
    session.expire_all()
    return session.get(OutboundMessage, row.id).delivery_status


def test_statuses_in_order_move_forward(post_signed, session, member):
    row = sent_row(session, member)
    for status in ("sent", "delivered"):
        assert post_signed("/twilio/status", status_form(status)).status_code == 200
    assert delivery_status(session, row) == "delivered"


def test_out_of_order_callback_never_moves_backwards(post_signed, session, member):
    row = sent_row(session, member)
    post_signed("/twilio/status", status_form("delivered"))
    post_signed("/twilio/status", status_form("sent"))
    post_signed("/twilio/status", status_form("queued"))
    assert delivery_status(session, row) == "delivered"


def test_repeated_callback_is_recorded_once(post_signed, session, member):
    sent_row(session, member)
    post_signed("/twilio/status", status_form("delivered"))
    post_signed("/twilio/status", status_form("delivered"))
    assert session.scalar(select(func.count(StatusEvent.id))) == 1


def test_failure_records_its_error_code(post_signed, session, member):
    row = sent_row(session, member)
    post_signed("/twilio/status", status_form("undelivered", error="30005"))
    session.expire_all()
    got = session.get(OutboundMessage, row.id)
    assert (got.delivery_status, got.error_code) == ("undelivered", 30005)


def test_a_failure_reporting_21610_opts_the_member_out_and_cancels_what_waits(post_signed, session, member):
    # With a Messaging Service the carrier's refusal often comes only in a callback.
    sent_row(session, member)
    waiting = queue_message(session, key="later", to=member.phone, body="tomorrow", kind="checkin", member=member)
    session.commit()
    post_signed("/twilio/status", status_form("failed", error="21610"))
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"
    assert session.get(OutboundMessage, waiting.id).state == "cancelled"
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.opted_out")).all()
    assert (event.actor, event.details["source"]) == ("carrier", f"status:{SID}")


@pytest.mark.parametrize("code", ["21211", "21614"])
def test_a_failure_reporting_a_bad_number_marks_it_once(post_signed, session, member, code):
    sent_row(session, member)
    post_signed("/twilio/status", status_form("failed", error=code))
    post_signed("/twilio/status", status_form("undelivered", error=code))  # said again: noted once
    session.expire_all()
    assert session.get(Member, member.id).fields["phone_error"] == int(code)
    assert session.scalar(select(func.count()).where(AuditEvent.action == "member.phone_invalid")) == 1


def test_a_delivery_failure_code_says_nothing_of_the_member(post_signed, session, member):
    sent_row(session, member)
    post_signed("/twilio/status", status_form("undelivered", error="30003"))  # the phone was off
    session.expire_all()
    got = session.get(Member, member.id)
    assert (got.status, got.fields.get("phone_error")) == ("active", None)


def test_a_21610_callback_that_came_before_the_sid_was_recorded_still_opts_the_member_out(post_signed, session,
                                                                                           member):
    from service.status import catch_up

    post_signed("/twilio/status", status_form("failed", error="21610"))
    row = queue_message(session, key="k2", to=member.phone, body="hi", kind="reply", member=member)
    row.provider_sid = SID
    catch_up(session, row)
    session.commit()
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"


def test_callback_before_the_sender_recorded_the_sid_is_applied_later(post_signed, session, member):
    from service.status import catch_up

    post_signed("/twilio/status", status_form("delivered"))
    row = queue_message(session, key="k2", to=member.phone, body="hi", kind="reply", member=member)
    row.provider_sid = SID
    catch_up(session, row)
    assert row.delivery_status == "delivered"


def test_status_callbacks_are_signed_and_validated(client, post_signed, member):
    assert client.post("/twilio/status", data=status_form("sent")).status_code == 403
    response = post_signed("/twilio/status", status_form("exploded"))
    assert response.status_code == 400 and "MessageStatus" in response.get_data(as_text=True)
    assert post_signed("/twilio/status", status_form("failed", error="abc")).status_code == 400


def test_an_absurd_error_code_is_a_400(post_signed, member):
    assert post_signed("/twilio/status", status_form("failed", error="9" * 30)).status_code == 400
    assert post_signed("/twilio/status", status_form("failed", error="\u00b2")).status_code == 400  # superscript 2


@pytest.mark.skipif(DATABASE == "sqlite", reason="SQLite runs one writer at a time: the two cannot interleave")
def test_a_callback_that_commits_after_the_sender_looked_for_it_is_still_applied(app, session, member):
    """The carrier's callback is stored before the sender commits the sid, but commits after the sender
    has looked for early callbacks: one of the two must still apply it."""
    at_commit, go = threading.Event(), threading.Event()

    def callback() -> None:
        with app.app_context():
            own = Session(app.extensions["hearth_db"].engine)
            paused: list[bool] = []

            @event.listens_for(own, "before_commit")
            def hold_the_first_commit(s):
                if not paused and not s.in_nested_transaction():  # the savepoint's release fires this too
                    paused.append(True)
                    at_commit.set()
                    go.wait(10)

            record_status(own, StatusCallback(sid=SID, status="delivered", error_code=None))
            own.close()

    thread = threading.Thread(target=callback)

    class Carrier:
        def send(self, to, body, status_callback, from_number=None):
            thread.start()  # the callback comes in before the carrier's answer does
            assert at_commit.wait(10)
            return SendResult(sid=SID, status="queued", segments=1)

    row = queue_message(session, key="k3", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    state = deliver(session, row.id, transport=Carrier(), limiter=app.extensions["hearth_runtime"].limiter,
                    sender="+441632960000", final_attempt=False)
    go.set()
    thread.join(timeout=30)
    assert state == "sent"
    assert delivery_status(session, row) == "delivered"


def test_a_repeated_callback_still_applies_a_status_its_first_copy_could_not(post_signed, session, member):
    # The first copy was stored before the row had its sid, and the sender's look missed it (or the
    # first copy's own second look never ran): the repeat applies it.
    post_signed("/twilio/status", status_form("delivered"))
    row = queue_message(session, key="k4", to=member.phone, body="hi", kind="reply", member=member)
    row.state, row.provider_sid, row.delivery_status = "sent", SID, "queued"
    session.commit()
    assert post_signed("/twilio/status", status_form("delivered")).status_code == 200
    assert delivery_status(session, row) == "delivered"


def test_a_21610_delivered_again_does_not_opt_out_a_member_who_texted_start_since(post_signed, session, member):
    """Twilio may deliver a callback more than once; a repeat changes nothing, least of all consent."""
    from tests.support import sms_form, twiml_messages

    row = sent_row(session, member)
    refused = status_form("undelivered", error="21610")
    assert post_signed("/twilio/status", refused).status_code == 200
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"
    [welcome] = twiml_messages(post_signed("/twilio/sms", sms_form("START")).get_data(as_text=True))
    assert "Welcome back" in welcome
    assert post_signed("/twilio/status", refused).status_code == 200  # the same callback again
    post_signed("/twilio/status", status_form("sent"))  # and one that looks at the stored ones again
    session.expire_all()
    assert session.get(Member, member.id).status == "active"
    assert delivery_status(session, row) == "undelivered"


def test_a_21610_for_a_message_sent_before_the_member_came_back_does_not_opt_them_out(post_signed, session, member,
                                                                                      clock):
    """The carrier refused a message sent while the phone had texted STOP; its callback comes in
    late, after the member texted START: that refusal is older than their consent."""
    from datetime import timedelta

    row = sent_row(session, member)
    row.sent_at = clock.now
    member.consent_at = clock.now + timedelta(minutes=5)  # START, after the send
    session.commit()
    clock.advance(minutes=10)
    assert post_signed("/twilio/status", status_form("undelivered", error="21610")).status_code == 200
    session.expire_all()
    assert session.get(Member, member.id).status == "active"


def test_partially_delivered_is_a_status_twilio_sends(post_signed, session, member):
    row = sent_row(session, member)
    assert post_signed("/twilio/status", status_form("partially_delivered")).status_code == 200
    assert delivery_status(session, row) == "partially_delivered"


@pytest.mark.parametrize("status, error, member_status", [
    ("delivered", None, "active"), ("undelivered", "21610", "opted_out")])
def test_a_callback_answered_in_full_before_the_sender_recorded_the_sid_is_applied_by_the_sender(
        app, post_signed, session, member, status, error, member_status):
    """The carrier can post a callback, and Hearth answer it, before the carrier's answer to the send
    reaches the worker: the callback finds no row with its sid, so the sender applies it once it has
    recorded the sid (a 21610 still opts the member out)."""
    class Carrier:
        def send(self, to, body, status_callback, from_number=None):
            assert post_signed("/twilio/status", status_form(status, error=error)).status_code == 200
            return SendResult(sid=SID, status="queued", segments=1)

    row = queue_message(session, key="k5", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    state = deliver(session, row.id, transport=Carrier(), limiter=app.extensions["hearth_runtime"].limiter,
                    sender="+441632960000", final_attempt=False)
    assert state == "sent"
    assert delivery_status(session, row) == status
    assert session.get(Member, member.id).status == member_status
