"""Sending outbox rows through the real Twilio SDK to the project's Twilio double."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from service import create_app
from service.directory import add_member
from service.exceptions import RateLimitedSendError, SetupSendError, TransientSendError
from service.models import AuditEvent, Member, OutboundMessage
from service.outbox import queue_message
from service.sending import deliver
from service.twilio_double import TwilioDouble
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support import answering


@pytest.fixture
def double():
    with TwilioDouble(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, callbacks=False) as double:
        yield double


@pytest.fixture
def app(config, clock, double):
    config = dataclasses.replace(config, transport="twilio", twilio_api_base=double.url, public_base_url=None)
    app = create_app(config, overrides={"TESTING": True, "CLOCK": clock})
    yield app
    app.extensions["hearth_db"].engine.dispose()


def send(app, session, row, final=False):
    runtime = app.extensions["hearth_runtime"]
    return deliver(session, row.id, transport=runtime.transport, limiter=runtime.limiter,
                   sender="+441632960000", final_attempt=final)


def fresh(session, row):
    session.expire_all()
    return session.get(OutboundMessage, row.id)


def test_a_row_is_sent_through_the_sdk_and_recorded(app, session, member, double):
    row = queue_message(session, key="k", to=member.phone, body="How are you today?", kind="reply", member=member)
    session.commit()
    assert send(app, session, row) == "sent"
    [request] = double.messages
    assert request["to"] == "+447700900123" and request["body"] == "How are you today?"
    assert request["from"] == "+441632960000"
    got = fresh(session, row)
    assert got.state == "sent" and got.provider_sid.startswith("SM") and got.delivery_status == "queued"
    assert got.attempts == 1


def test_a_row_sent_through_a_messaging_service_keeps_its_own_segment_count(config, clock, session, member, double):
    """Twilio answers a Messaging Service's message with num_segments "0": the row keeps what it measured."""
    config = dataclasses.replace(config, transport="twilio", twilio_api_base=double.url, public_base_url=None,
                                 twilio_messaging_service_sid="MG" + "0" * 32)
    app = create_app(config, overrides={"TESTING": True, "CLOCK": clock})
    try:
        row = queue_message(session, key="k", to=member.phone, body="a" * 161, kind="reply", member=member)
        session.commit()
        assert send(app, session, row) == "sent"
        [message] = double.messages
        assert message["messaging_service_sid"] == "MG" + "0" * 32
        assert fresh(session, row).segments == 2
    finally:
        app.extensions["hearth_db"].engine.dispose()


def test_a_row_is_sent_once_however_often_its_job_runs(app, session, member, double):
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    assert send(app, session, row) == "sent"
    assert send(app, session, row) == "skipped"
    assert len(double.messages) == 1


def test_rate_limited_then_accepted(app, session, member, double):
    double.fail(member.phone, "429", times=1)
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    with pytest.raises(TransientSendError):
        send(app, session, row)
    assert (fresh(session, row).state, fresh(session, row).error_code) == ("pending", 20429)
    assert send(app, session, row) == "sent"
    got = fresh(session, row)
    assert (got.attempts, got.error_code, got.error_message) == (2, None, None)  # the 429 is behind it


def test_a_429_holds_the_sender_for_its_retry_after_in_every_worker(app, session, member, double, redis):
    double.configure(retry_after=8)  # long enough that a slow machine still finds the hold in place
    double.fail(member.phone, "429", times=1)
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    with pytest.raises(RateLimitedSendError) as throttled:
        send(app, session, row)
    assert throttled.value.retry_after == 8.0
    assert 0 < redis.pttl("hearth-send-hold:+441632960000") <= 8000, "the sender is held for 8 s"
    assert redis.pttl("hearth-send-hold:+440000000000") == -2, "and only that sender"


def tried_all_but_once(session, row) -> None:
    """The row as if its job had tried it every time but the last (`sending.TRIES`)."""
    from service.sending import TRIES

    session.execute(OutboundMessage.__table__.update().where(OutboundMessage.__table__.c.id == row.id)
                    .values(attempts=TRIES - 1))
    session.commit()


def test_server_errors_on_the_last_attempt_are_a_recorded_failure(app, session, member, double):
    double.fail(member.phone, "500")
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    tried_all_but_once(session, row)
    assert send(app, session, row, final=True) == "failed"
    got = fresh(session, row)
    assert got.state == "failed" and "500" in got.error_message


def test_a_row_first_tried_on_its_jobs_last_run_keeps_its_own_tries(app, session, member, double):
    """Held back behind a failing row to the same number, a row is first tried on its job's last
    run: one 5xx then leaves it pending for the sweeper's new job, not failed after one try."""
    double.fail(member.phone, "500", times=1)
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    with pytest.raises(TransientSendError):
        send(app, session, row, final=True)
    got = fresh(session, row)
    assert (got.state, got.attempts, got.claimed_at) == ("pending", 1, None)
    assert send(app, session, row, final=True) == "sent"


def test_an_answer_the_transport_cannot_read_is_retried_then_recorded_never_left_sending(app, session, member,
                                                                                        double, clock, redis):
    """A proxy in the way answers 200 with a web page: the SDK cannot read it. The row is tried
    again within its job's retries and then recorded as failed; it is not left `sending`, to be
    handed to the carrier again each time its claim lapses."""
    from tests.support import sweep_now

    double.fail(member.phone, "html")
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    with pytest.raises(TransientSendError):
        send(app, session, row)
    assert (fresh(session, row).state, fresh(session, row).claimed_at) == ("pending", None)
    tried_all_but_once(session, row)
    assert send(app, session, row, final=True) == "failed"
    clock.advance(seconds=600)
    sweep_now(session, redis)
    assert send(app, session, row, final=True) == "skipped"
    got = fresh(session, row)
    assert (got.state, got.attempts, len(double.requests)) == ("failed", 7, 2)
    assert "JSONDecodeError" in got.error_message


@pytest.mark.parametrize("status, page", [
    (404, b"<html><body><h1>Not Found</h1></body></html>"),  # a TWILIO_API_BASE that is not the API
    (401, b"<html><body>Authorization Required</body></html>"),  # a proxy that wants its own login
])
def test_a_4xx_page_where_the_apis_json_belongs_is_a_setup_error_and_the_message_waits(
        config, clock, session, member, caplog, status, page):
    """Not the message's fault: on its job's last run, its own tries used, it is not failed but
    waits for the sweeper as under a refused account, and the log says what is wrong and which URL
    was asked."""
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="broadcast", member=member)
    session.commit()
    tried_all_but_once(session, row)
    with answering(status, page, "text/html; charset=utf-8") as base:
        wrong = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=base),
                           overrides={"TESTING": True, "CLOCK": clock})
        assert send(wrong, session, row, final=True) == "pending"
        wrong.extensions["hearth_db"].engine.dispose()
    got = fresh(session, row)
    assert (got.state, got.refusals, got.due_at) == ("pending", 1, clock.now + timedelta(minutes=10))
    asked = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert got.error_message == (f"{asked} answered {status} with text/html, not the Twilio API's JSON:"
                                 " check TWILIO_API_BASE (or a proxy in the way)")
    assert [r.levelname for r in caplog.records if asked in r.getMessage()] == ["ERROR"]


def test_a_5xx_page_where_the_apis_json_belongs_is_tried_again_soon_naming_the_url(config, clock, session, member):
    """A proxy's 502 page may be gone in a moment: the row's own tries with back-off follow (an
    alert must not wait a setup error's ten minutes for one), and the row says which URL answered."""
    row = queue_message(session, key="k", to=member.phone, body="hi", kind="alert", member=member)
    session.commit()
    with answering(502, b"<html><body>502 Bad Gateway</body></html>", "text/html; charset=utf-8") as base:
        proxied = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=base),
                             overrides={"TESTING": True, "CLOCK": clock})
        with pytest.raises(TransientSendError):
            send(proxied, session, row)
        proxied.extensions["hearth_db"].engine.dispose()
    got = fresh(session, row)
    assert (got.state, got.refusals) == ("pending", 0)
    asked = f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert got.error_message.startswith(f"{asked} answered 502 with text/html, not the Twilio API's JSON")


class TimesOut:
    """A carrier that outlasts the job: RQ's death penalty raises its timeout inside the send."""

    def send(self, *args, **kwargs):
        from rq.timeouts import JobTimeoutException

        raise JobTimeoutException("Task exceeded maximum timeout value (30 seconds)")


@pytest.mark.parametrize("used_up", [False, True])
def test_a_send_stopped_by_its_jobs_timeout_is_put_back_at_once_or_failed_on_its_last_run(app, session, member,
                                                                                          double, used_up):
    from rq.timeouts import JobTimeoutException

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    if used_up:
        tried_all_but_once(session, row)
    runtime = app.extensions["hearth_runtime"]
    with pytest.raises(JobTimeoutException):  # RQ still sees its job timed out
        deliver(session, row.id, transport=TimesOut(), limiter=runtime.limiter, sender="+441632960000",
                final_attempt=used_up)
    got = fresh(session, row)
    assert "time ran out" in got.error_message
    if used_up:
        assert (got.state, got.attempts) == ("failed", 7)
    else:
        assert (got.state, got.claimed_at, got.attempts) == ("pending", None, 1)  # not left `sending`
        assert send(app, session, row) == "sent"


def refused_for_a_whole_job(config, clock, session, member, double):
    """A broadcast whose first job ran TRIES times against a rotated token: each try was the
    account's refusal (never the message's), and it now waits for the sweeper (`SETUP_WAIT`)."""
    from service.exceptions import SetupSendError
    from service.sending import TRIES

    row = queue_message(session, key="b", to=member.phone, body="hi", kind="broadcast", member=member)
    session.commit()
    wrong = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url,
                                           twilio_auth_token="rotated-last-night"),
                       overrides={"TESTING": True, "CLOCK": clock})
    for run in range(TRIES):
        if run < TRIES - 1:
            with pytest.raises(SetupSendError):
                send(wrong, session, row)
        else:
            assert send(wrong, session, row, final=True) == "pending"
    wrong.extensions["hearth_db"].engine.dispose()
    assert (fresh(session, row).state, fresh(session, row).attempts) == ("pending", TRIES)
    assert double.messages == []
    clock.advance(minutes=10)  # the settings are fixed; the sweeper gives it a new job
    return row


def test_a_refused_accounts_message_is_not_failed_by_a_timeout_on_a_run_with_retries_to_come(
        app, config, clock, session, member, double):
    """A refusal of the account never fails a message: its first real send after the fix runs into
    RQ's timeout on the new job's first run (six retries to come), and it is put back."""
    from rq.timeouts import JobTimeoutException

    row = refused_for_a_whole_job(config, clock, session, member, double)
    runtime = app.extensions["hearth_runtime"]
    with pytest.raises(JobTimeoutException):
        deliver(session, row.id, transport=TimesOut(), limiter=runtime.limiter, sender="+441632960000",
                final_attempt=False)
    got = fresh(session, row)
    assert got.state == "pending", f"failed after one real try: {got.error_message}"


def test_a_refused_accounts_message_is_sent_when_the_worker_that_first_took_it_was_killed(
        app, config, clock, session, member, double):
    """The same row, claimed after the fix by a worker that is then killed (a deploy restarting the
    workers with the new token): the takeover after the lease sends it."""
    row = refused_for_a_whole_job(config, clock, session, member, double)
    table = OutboundMessage.__table__
    session.execute(table.update().where(table.c.id == row.id).values(  # the killed worker's claim
        state="sending", attempts=table.c.attempts + 1, claimed_at=clock.now))
    session.commit()
    clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
    assert send(app, session, row) == "sent", fresh(session, row).error_message


def test_a_send_whose_claim_lapsed_does_not_undo_the_record_of_the_worker_that_took_over(app, session, member,
                                                                                       double, clock):
    """Worker A stalls in the carrier's call past its lease; worker B takes the row, sends it, and
    its delivery is reported. A's late record must not put back its own sid and `queued`."""
    from service.forms import StatusCallback
    from service.status import record_status

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    transport = app.extensions["hearth_runtime"].transport
    taken_over = {}

    class Stalling:
        def send(self, *args, **kwargs):
            clock.advance(seconds=61)  # A's lease runs out while it waits for the carrier
            assert send(app, session, row) == "sent"  # B
            taken_over["sid"] = fresh(session, row).provider_sid
            record_status(session, StatusCallback(taken_over["sid"], "delivered", None))
            return transport.send(*args, **kwargs)

    runtime = app.extensions["hearth_runtime"]
    assert deliver(session, row.id, transport=Stalling(), limiter=runtime.limiter, sender="+441632960000",
                   final_attempt=False) == "sent"
    got = fresh(session, row)
    assert (got.provider_sid, got.delivery_status) == (taken_over["sid"], "delivered")
    assert len(double.messages) == 2  # sent twice, and counted: A's copy was in flight


def same_phone_elsewhere(session, member):
    """The member's phone, a member of a second community too (which texts from the same sender)."""
    from service.directory import add_member, create_community

    elsewhere = add_member(session, create_community(session, "Elm House"), "Alex", member.phone, welcome=False)
    session.commit()
    return elsewhere


def test_21610_opts_the_phone_out_everywhere_and_cancels_the_rest(app, session, member, double):
    double.fail(member.phone, "21610")
    elsewhere = same_phone_elsewhere(session, member)
    first = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    second = queue_message(session, key="b", to=member.phone, body="two", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, first) == "failed"
    assert fresh(session, first).error_code == 21610
    assert [session.get(Member, m.id).status for m in (member, elsewhere)] == ["opted_out", "opted_out"]
    assert fresh(session, second).state == "cancelled"
    assert session.scalars(select(AuditEvent.details).where(AuditEvent.action == "member.opted_out")).all() == [
        {"source": "twilio:21610"}] * 2


def test_a_21610_answer_does_not_opt_out_a_member_who_texted_start_while_the_send_was_in_flight(
        app, session, member, clock):
    """The carrier's 21610 reports a STOP it had before the message was submitted; a START Hearth
    took while the carrier was answering is newer, and stands (as for a status callback)."""
    from service.exceptions import PermanentSendError
    from service.transports.twilio import OPTED_OUT

    engine = app.extensions["hearth_db"].engine

    class Carrier:
        def send(self, to, body, status_callback, from_number=None):
            with engine.begin() as conn:  # the member's START, committed by a webhook meanwhile
                conn.execute(Member.__table__.update().where(Member.__table__.c.id == member.id)
                             .values(consent_at=clock.advance(seconds=1)))
            raise PermanentSendError("Attempt to send to unsubscribed recipient", code=OPTED_OUT)

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    assert deliver(session, row.id, transport=Carrier(), limiter=runtime.limiter, sender="+441632960000",
                   final_attempt=False) == "failed"
    session.expire_all()
    assert session.get(Member, member.id).status == "active"
    assert fresh(session, row).error_code == 21610


@pytest.mark.parametrize("code", ["21211", "21614"])
def test_a_bad_number_is_marked_and_not_tried_again(app, session, member, double, code):
    double.fail(member.phone, code)
    first = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    second = queue_message(session, key="b", to=member.phone, body="two", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, first) == "failed"
    assert fresh(session, first).error_code == int(code)
    assert send(app, session, second) == "cancelled"
    assert len(double.requests) == 1


def test_a_bad_number_is_marked_in_every_community(app, session, member, double):
    double.fail(member.phone, "21211")
    elsewhere = same_phone_elsewhere(session, member)
    row = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, row) == "failed"
    session.expire_all()
    assert [session.get(Member, m.id).fields.get("phone_error") for m in (member, elsewhere)] == [21211, 21211]


def test_a_refused_account_fails_no_message_and_they_go_once_it_is_fixed(config, clock, session, member, double):
    """A rotated or mistyped auth token is refused (401, 20003) for every message alike: none is
    counted a failure; each waits, and goes once the settings are right."""
    from service.exceptions import SetupSendError

    rows = [queue_message(session, key=f"k{i}", to=f"+44770090012{i}", body=f"hi {i}", kind="broadcast", member=member)
            for i in range(2)]  # to two numbers: one number's second message would wait for its first
    session.commit()
    wrong = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url,
                                           twilio_auth_token="rotated-last-night"),
                       overrides={"TESTING": True, "CLOCK": clock})
    with pytest.raises(SetupSendError) as refused:
        send(wrong, session, rows[0])
    assert refused.value.code == 20003
    assert send(wrong, session, rows[1], final=True) == "pending"  # its last try: it waits, not failed
    wrong.extensions["hearth_db"].engine.dispose()
    got = [fresh(session, row) for row in rows]
    assert [(r.state, r.error_code) for r in got] == [("pending", 20003)] * 2
    assert got[1].due_at == clock.now + timedelta(minutes=10)
    assert double.messages == []

    fixed = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url),
                       overrides={"TESTING": True, "CLOCK": clock})
    clock.advance(minutes=10)
    assert [send(fixed, session, row) for row in rows] == ["sent", "sent"]
    fixed.extensions["hearth_db"].engine.dispose()
    assert sorted(m["body"] for m in double.messages) == ["hi 0", "hi 1"]


def test_a_check_in_that_waited_hours_for_a_refused_account_is_set_aside_not_sent(config, clock, session, member,
                                                                                   double):
    """Each wait for the account moves when the row is due on by ten minutes; its time stays the
    slot's, so once it is an hour late it is set aside, as the clock sets aside a late check-in."""
    row = queue_message(session, key="c", to=member.phone, body="How are you today?", kind="checkin", member=member)
    session.commit()
    wrong = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url,
                                           twilio_auth_token="rotated-last-night"),
                       overrides={"TESTING": True, "CLOCK": clock})
    for _ in range(5):  # 50 minutes of waits: each its job's last try
        assert send(wrong, session, row, final=True) == "pending"
        clock.advance(minutes=10)
    wrong.extensions["hearth_db"].engine.dispose()
    clock.advance(minutes=15)
    fixed = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url),
                       overrides={"TESTING": True, "CLOCK": clock})
    assert send(fixed, session, row) == "cancelled"
    fixed.extensions["hearth_db"].engine.dispose()
    assert fresh(session, row).error_message == "set aside: its turn came 1 h 05 min after its time"
    assert double.messages == []


def test_a_check_in_queued_before_the_member_paused_is_not_sent(app, session, member, double):
    """A scheduled run's check-in waits for the rate limit; meanwhile the member texts PAUSE 7."""
    checkin = queue_message(session, key="c", to=member.phone, body="How are you today?", kind="checkin",
                            member=member)
    vote = queue_message(session, key="v", to=member.phone, body="Community vote", kind="flow", member=member)
    session.commit()
    session.execute(Member.__table__.update().where(Member.__table__.c.id == member.id).values(status="paused"))
    session.commit()
    assert [send(app, session, row) for row in (checkin, vote)] == ["cancelled", "sent"]
    assert fresh(session, checkin).error_message == "member is paused"
    assert [m["body"] for m in double.messages] == ["Community vote"]


def test_no_text_goes_to_a_member_who_takes_calls(app, session, member, double):
    """A landline on the voice channel cannot take texts (the carrier would refuse it and Hearth
    mark the number bad); calls are not built, so what is queued for them is cancelled, saying why."""
    member.channel = "voice"
    row = queue_message(session, key="w", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.commit()
    assert send(app, session, row) == "cancelled"
    assert fresh(session, row).error_message == "the member takes calls, which Hearth does not place yet"
    assert double.messages == []


def test_nothing_goes_to_an_opted_out_member(app, session, member, double):
    row = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    member.status = "opted_out"
    session.commit()
    assert send(app, session, row) == "cancelled"
    assert double.requests == []


def test_a_row_not_yet_due_is_not_sent(app, session, member, double, clock):
    row = queue_message(session, key="a", to=member.phone, body="later", kind="broadcast", member=member,
                        due_at=clock.now.replace(hour=20))
    session.commit()
    assert send(app, session, row) == "skipped"
    assert double.requests == []


def test_a_stop_that_lands_while_a_send_waits_for_the_rate_limit_wins(app, session, member, double):
    from service.models import Member as MemberRow

    row = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    session.commit()

    class StopArrivesMeanwhile:
        """A rate limit whose wait is long enough for the member's STOP to commit."""

        def acquire(self, sender, cost=1, alive=None, urgent=False):
            from sqlalchemy.orm import Session

            with Session(app.extensions["hearth_db"].engine) as other:  # the webhook's own connection
                other.get(MemberRow, member.id).status = "opted_out"
                other.commit()
            return 1.0

    runtime = app.extensions["hearth_runtime"]
    state = deliver(session, row.id, transport=runtime.transport, limiter=StopArrivesMeanwhile(),
                    sender="+441632960000", final_attempt=False)
    assert state == "cancelled"
    assert double.requests == []


def test_a_claim_that_lapses_while_it_waits_for_the_rate_limit_sends_nothing(app, session, member, double, clock):
    """The wait outlasts the lease: the sweeper hands the row to a second worker, which sends it.
    The first, back from its wait, must neither send it again nor write over the second's record.
    """
    from sqlalchemy.orm import Session

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    second_worker = []

    class WaitPastTheLease:
        def acquire(self, sender, cost=1, alive=None, urgent=False):
            clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
            with Session(app.extensions["hearth_db"].engine) as other:
                second_worker.append(deliver(other, row.id, transport=runtime.transport, limiter=runtime.limiter,
                                             sender="+441632960000", final_attempt=False))
            return app.config["HEARTH"].send_lease + 1

    state = deliver(session, row.id, transport=runtime.transport, limiter=WaitPastTheLease(),
                    sender="+441632960000", final_attempt=False)
    assert (state, second_worker) == ("skipped", ["sent"])
    assert [m["body"] for m in double.messages] == ["one"]
    got = fresh(session, row)
    assert (got.state, got.attempts, got.provider_sid) == ("sent", 2, double.messages[0]["sid"])


def test_a_wait_for_the_rate_limit_starts_the_claims_lease_again(app, session, member, double, clock):
    """A long wait, then the send: the sweeper must not take the row from the worker sending it."""
    from service.sending import claimable

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    lease = app.config["HEARTH"].send_lease

    class LongWait:
        def acquire(self, sender, cost=1, alive=None, urgent=False):
            clock.advance(seconds=lease - 1)
            return lease - 1

    class CarrierThenLook:
        def send(self, to, body, status_callback, from_number=None):
            from service.transports import SendResult
            clock.advance(seconds=2)  # the claim is `lease + 1` s old, but was taken afresh 2 s ago
            taken = session.scalar(select(OutboundMessage.id).where(OutboundMessage.id == row.id,
                                                                     claimable(clock.now)))
            session.rollback()
            assert taken is None, "the sweeper would take a row that is being sent"
            return SendResult(sid="SM" + "1" * 32, status="queued", segments=1)

    assert deliver(session, row.id, transport=CarrierThenLook(), limiter=LongWait(), sender="+441632960000",
                   final_attempt=False) == "sent"


@pytest.mark.parametrize("failing, first_run, rerun", [
    ("other", ["0", "2"], ["skipped", "sent", "skipped"]),  # past one recipient's failure the others go
    ("member", ["1"], ["sent", "skipped", "sent"]),  # a recipient's later row waits for their first
])
def test_a_batch_goes_past_a_transient_failure_but_keeps_a_recipients_order(app, session, member, double, failing,
                                                                            first_run, rerun):
    from service.sending import deliver_batch

    other = add_member_for_test(session, member)
    double.fail((other if failing == "other" else member).phone, "429", times=1)
    rows = [queue_message(session, key=f"b{i}", to=person.phone, body=f"{i}", kind="flow", member=person)
            for i, person in enumerate([member, other, member])]
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    how = dict(transport=runtime.transport, limiter=runtime.limiter, sender="+441632960000", final_attempt=False)
    with pytest.raises(TransientSendError):
        deliver_batch(session, [r.id for r in rows], **how)
    assert [m["body"] for m in double.messages] == first_run
    assert deliver_batch(session, [r.id for r in rows], **how) == rerun  # a row sent is not sent again
    assert sorted(m["body"] for m in double.messages) == ["0", "1", "2"]


def test_a_batch_does_not_overtake_a_row_another_worker_is_sending(app, session, member, double, clock, redis):
    """Two jobs for the same rows (a flushed Redis, a sweep as they were enqueued): while the other
    job's worker sends "Voting has closed", this one leaves the member's next text pending behind
    it, and sends another member's; the sweeper gives the next text no job until the first is sent."""
    from service.sending import deliver_batch
    from tests.support import sweep_now

    other = add_member_for_test(session, member)
    rows = [queue_message(session, key=f"b{i}", to=person.phone, body=body, kind="flow", member=person)
            for i, (person, body) in enumerate([(member, "Voting has closed."), (member, "Next question?"),
                                                (other, "Hello Sam")])]
    session.commit()
    session.execute(OutboundMessage.__table__.update().where(OutboundMessage.__table__.c.id == rows[0].id)
                    .values(state="sending", claimed_at=clock.now, attempts=1))
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    states = deliver_batch(session, [r.id for r in rows], transport=runtime.transport, limiter=runtime.limiter,
                           sender="+441632960000", final_attempt=False)
    assert states == ["skipped", "skipped", "sent"]
    assert [m["body"] for m in double.messages] == ["Hello Sam"]
    assert fresh(session, rows[1]).state == "pending"
    redis.flushdb()  # the jobs are gone: only the sweeper can give the row one
    assert sweep_now(session, redis) == 0
    session.execute(OutboundMessage.__table__.update().where(OutboundMessage.__table__.c.id == rows[0].id)
                    .values(state="sent"))  # the other worker is done
    session.commit()
    assert sweep_now(session, redis) == 1
    assert send(app, session, rows[1]) == "sent"


def test_an_alert_is_not_held_back_behind_a_check_in_being_sent_to_the_same_phone(app, session, member, double,
                                                                                  clock):
    """A facilitator on the rota who is also a member: their check-in is in flight when an alert
    comes for them. The alert goes; before, its job ended "skipped" and it waited for the sweeper."""
    rows = [queue_message(session, key=key, to=member.phone, body=body, kind=kind, member=member)
            for key, body, kind in (("c", "How are you today?", "checkin"), ("a", "Hearth, Oak House (high)", "alert"))]
    session.commit()
    session.execute(OutboundMessage.__table__.update().where(OutboundMessage.__table__.c.id == rows[0].id)
                    .values(state="sending", claimed_at=clock.now, attempts=1))
    session.commit()
    assert send(app, session, rows[1]) == "sent"
    assert [m["body"] for m in double.messages] == ["Hearth, Oak House (high)"]


def test_a_members_next_reply_waits_while_their_last_waits_out_its_retry(app, session, member, double, clock):
    """A reply the carrier failed (a 500) is put back for its job's retry, seconds to minutes away.
    The member's next reply, in a job of its own, waits for it: before, it went first, and the
    member read the answer to their second text before the answer to their first."""
    double.fail(member.phone, "500", times=1)
    first = queue_message(session, key="r1", to=member.phone, body="Thanks. How did you sleep?", kind="flow",
                          member=member)
    session.commit()
    second = queue_message(session, key="r2", to=member.phone, body="Noted: 7 hours.", kind="flow", member=member)
    session.commit()
    with pytest.raises(TransientSendError):
        send(app, session, first)
    assert fresh(session, first).state == "pending"
    assert send(app, session, second) == "skipped"  # its job ends; the sweeper gives it another
    assert fresh(session, second).state == "pending"
    assert send(app, session, first) == "sent"  # the retry
    assert send(app, session, second) == "sent"
    assert [m["body"] for m in double.messages] == ["Thanks. How did you sleep?", "Noted: 7 hours."]


def test_of_two_jobs_for_one_members_replies_the_later_waits_for_the_earlier_not_yet_taken(app, session, member,
                                                                                           double):
    """Two texts from one member answered by two workers at once: the second answer's job may be
    taken first. It leaves its row for the first answer to go first."""
    first = queue_message(session, key="r1", to=member.phone, body="first", kind="reply", member=member)
    session.commit()
    second = queue_message(session, key="r2", to=member.phone, body="second", kind="reply", member=member)
    session.commit()
    assert send(app, session, second) == "skipped"
    assert [send(app, session, row) for row in (first, second)] == ["sent", "sent"]
    assert [m["body"] for m in double.messages] == ["first", "second"]


def test_a_reply_does_not_wait_for_a_check_in_nor_an_alert_for_an_earlier_alert(app, session, member, double):
    """Only rows on the same queue keep their order: a member's HELP is answered while their
    check-in waits out a retry, and a facilitator's second alert goes while the first does."""
    double.fail(member.phone, "500", times=2)
    check_in = queue_message(session, key="c", to=member.phone, body="How are you today?", kind="checkin",
                             member=member)
    alert = queue_message(session, key="a1", to=member.phone, body="alert one", kind="alert", member=member)
    session.commit()
    for row in (check_in, alert):
        with pytest.raises(TransientSendError):
            send(app, session, row)
    reply = queue_message(session, key="h", to=member.phone, body="Help text", kind="reply", member=member)
    second_alert = queue_message(session, key="a2", to=member.phone, body="alert two", kind="alert", member=member)
    session.commit()
    assert [send(app, session, row) for row in (reply, second_alert)] == ["sent", "sent"]
    assert [m["body"] for m in double.messages] == ["Help text", "alert two"]


def add_member_for_test(session, member):
    from service.directory import add_member

    other = add_member(session, member.community, "Sam", "07700 900124", welcome=False)
    session.commit()
    return other


def test_a_welcome_whose_turn_comes_in_quiet_hours_waits_for_their_end(app, session, member, double, clock):
    clock.now = datetime(2026, 11, 23, 20, 59, tzinfo=timezone.utc)  # quiet hours 21:00-08:00, London
    row = queue_message(session, key="w", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.commit()
    assert fresh(session, row).due_at == clock.now  # due before they began...
    clock.now = datetime(2026, 11, 24, 2, 30, tzinfo=timezone.utc)  # ...but a worker takes it at 02:30
    assert send(app, session, row) == "held"
    got = fresh(session, row)
    assert (got.state, got.due_at, got.claimed_at) == ("pending", datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc),
                                                       None)
    assert double.messages == []
    clock.now = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert send(app, session, row) == "sent" and len(double.messages) == 1


class RefusesTheAccount:
    """A carrier that refuses Hearth's account (a rotated token) on every send."""

    def send(self, *args, **kwargs):
        raise SetupSendError("Twilio refused the account (HTTP 401)", code=20003)


def test_a_welcome_put_back_for_the_settings_in_quiet_hours_waits_for_their_end(app, session, member, double,
                                                                               clock):
    """A welcome whose last try met a refusal of the account just before quiet hours is not tried
    again SETUP_WAIT later, in them, as if that time were one it was given on purpose: it waits for their end."""
    clock.now = datetime(2026, 11, 23, 20, 55, tzinfo=timezone.utc)  # quiet hours 21:00-08:00, London
    row = queue_message(session, key="w", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    assert deliver(session, row.id, transport=RefusesTheAccount(), limiter=runtime.limiter, sender="+441632960000",
                   final_attempt=True) == "pending"
    assert fresh(session, row).due_at == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    clock.now = datetime(2026, 11, 23, 21, 5, tzinfo=timezone.utc)  # the settings are fixed
    assert send(app, session, row) != "sent"
    assert double.messages == []
    clock.now = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert send(app, session, row) == "sent" and len(double.messages) == 1


def test_a_welcome_sent_ahead_of_a_flow_started_in_quiet_hours_goes_then_and_first(app, session, member, double,
                                                                                    clock):
    """A flow started in quiet hours (`--in-quiet-hours`) sends the member's held welcome ahead of
    it: the welcome is not held again when its turn comes, and the flow's message waits for it."""
    from service.outbox import welcome_now

    clock.now = datetime(2026, 11, 23, 22, 0, tzinfo=timezone.utc)  # quiet hours 21:00-08:00, London
    welcome = queue_message(session, key="w", to=member.phone, body="Welcome", kind="welcome", member=member)
    session.commit()
    assert fresh(session, welcome).due_at == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    welcome_now(session, member, "bulk")
    vote = queue_message(session, key="v", to=member.phone, body="Film night?", kind="flow", member=member,
                         queue="bulk")
    session.commit()
    assert send(app, session, vote) == "skipped"  # the welcome goes first
    assert [send(app, session, row) for row in (welcome, vote)] == ["sent", "sent"]
    assert [m["body"] for m in double.messages] == ["Welcome", "Film night?"]


@pytest.mark.parametrize("kind, sent_late", [("checkin", False), ("reminder", False), ("flow", True),
                                             ("alert", True), ("welcome", True)])
def test_a_check_in_or_reminder_whose_turn_comes_over_an_hour_late_is_set_aside(app, session, member, double, clock,
                                                                               kind, sent_late):
    clock.now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    on_time = queue_message(session, key="a", to=member.phone, body="How are you?", kind=kind, member=member)
    late = queue_message(session, key="b", to=member.phone, body="How are you?", kind=kind, member=member)
    session.commit()
    clock.now = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)
    assert send(app, session, on_time) == "sent"  # an hour late is still its time
    clock.now = datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)
    if sent_late:
        assert send(app, session, late) == "sent"
    else:
        assert send(app, session, late) == "cancelled"
        assert fresh(session, late).error_message == "set aside: its turn came 2 h 30 min after its time"
        assert len(double.messages) == 1


def test_a_reminder_whose_turn_comes_in_quiet_hours_is_set_aside(app, session, member, double, clock):
    clock.now = datetime(2026, 11, 23, 20, 50, tzinfo=timezone.utc)  # quiet hours 21:00-08:00, London
    row = queue_message(session, key="r", to=member.phone, body="Just checking in", kind="reminder", member=member)
    session.commit()
    clock.now = datetime(2026, 11, 23, 21, 10, tzinfo=timezone.utc)
    assert send(app, session, row) == "cancelled"
    assert fresh(session, row).error_message == "set aside: its turn came in quiet hours"
    assert double.messages == []


def test_a_batch_stops_for_more_urgent_messages_and_leaves_the_rest_untried(app, session, member, double):
    from service.sending import DEFERRED, deliver_batch

    rows = [queue_message(session, key=f"b{i}", to=member.phone, body=f"{i}", kind="broadcast", member=member)
            for i in range(3)]
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    asked = []

    def give_way():
        asked.append(len(double.messages))
        return len(double.messages) == 1

    states = deliver_batch(session, [r.id for r in rows], give_way=give_way, transport=runtime.transport,
                           limiter=runtime.limiter, sender="+441632960000", final_attempt=False)
    assert states == ["sent", DEFERRED, DEFERRED]
    assert asked == [1]  # asked between rows only: not before the first
    assert [m["body"] for m in double.messages] == ["0"]
    assert [fresh(session, r).state for r in rows] == ["sent", "pending", "pending"]


def test_a_batch_does_not_stop_once_a_row_has_failed(app, session, member, double):
    from service.sending import deliver_batch

    other = add_member_for_test(session, member)
    double.fail(member.phone, "429", times=1)
    rows = [queue_message(session, key=f"b{i}", to=person.phone, body=f"{i}", kind="flow", member=person)
            for i, person in enumerate([member, other, member])]
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    with pytest.raises(TransientSendError):  # the held-back row must wait for the retry, not a new job
        deliver_batch(session, [r.id for r in rows], give_way=lambda: True, transport=runtime.transport,
                      limiter=runtime.limiter, sender="+441632960000", final_attempt=False)
    assert [m["body"] for m in double.messages] == ["1"]


def test_a_bulk_batch_gives_way_to_an_alert_and_hands_its_rest_back_in_order(app, session, member, double, redis,
                                                                           monkeypatch):
    """An alert to a facilitator queued while a broadcast goes out is the worker's next send."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from service.directory import add_member
    from workers.queues import PRIORITY, queue, row_ids

    monkeypatch.setattr("workers.jobs.worker_app", lambda: app)
    people = [member] + [add_member(session, member.community, f"M{i}", f"07700 90012{i}", welcome=False)
                         for i in (4, 5)]
    session.commit()
    rows = [queue_message(session, key=f"b{i}", to=p.phone, body=f"broadcast {i}", kind="broadcast", member=p)
            for i, p in enumerate(people)]
    session.commit()
    later = queue_message(session, key="later", to=member.phone, body="later", kind="broadcast", member=member)
    session.commit()
    alert = queue_message(session, key="alert", to="+447700900999", body="alert", kind="alert",
                          community_id=member.community_id)
    session.commit()
    # The worker's app context ends this session's.
    ids, alert_id, later_id = [r.id for r in rows], alert.id, later.id

    def waiting(name):
        return [row_ids(job_id) for job_id in queue(name, redis).get_job_ids()]

    assert waiting("bulk") == [ids, [later_id]] and waiting("crisis") == [[alert_id]]
    # A worker that had taken the batch before the alert was queued (here, one that listens to bulk only):
    SimpleWorker([queue("bulk", redis)], connection=redis, serializer=JSONSerializer).work(burst=True, max_jobs=1)
    assert [m["body"] for m in double.messages] == ["broadcast 0"]
    assert waiting("bulk") == [ids[1:], [later_id]] and waiting("crisis") == [[alert_id]]  # kept its place

    SimpleWorker([queue(name, redis) for name in PRIORITY], connection=redis, serializer=JSONSerializer).work(
        burst=True)
    assert [m["body"] for m in double.messages] == ["broadcast 0", "alert", "broadcast 1", "broadcast 2", "later"]
    assert {session.get(OutboundMessage, i).state for i in ids + [alert_id, later_id]} == {"sent"}


@pytest.mark.parametrize("failing", [False, True], ids=["no-failure", "a-row-failed"])
def test_a_running_batch_reports_between_every_two_sends(app, session, member, double, redis, monkeypatch, failing):
    """The sweeper counts a batch live while it reports: after a row's transient failure too (the
    rate limit or the carrier's hold it caused can keep the rest of the batch past the lease)."""
    from rq import SimpleWorker, get_current_job
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from service.directory import add_member
    from workers.queues import live_send_rows, queue

    monkeypatch.setattr("workers.jobs.worker_app", lambda: app)
    people = [member] + [add_member(session, member.community, f"M{i}", f"07700 90013{i}", welcome=False)
                         for i in range(2)]
    session.commit()
    if failing:
        double.fail(people[0].phone, "500", times=1)
    ids = [queue_message(session, key=f"b{i}", to=p.phone, body=f"{i}", kind="broadcast", member=p).id
           for i, p in enumerate(people)]
    session.commit()
    transport = app.extensions["hearth_runtime"].transport
    real_send, seen = transport.send, []

    def send(*args, **kwargs):  # at each send: when it began, the job's last report, what the sweeper sees
        job = get_current_job()
        heard = Job.fetch(job.id, connection=redis, serializer=JSONSerializer).last_heartbeat
        began = datetime.now(timezone.utc)
        seen.append((began, heard, live_send_rows(redis, started_after=seen[-1][0]) if seen else None))
        return real_send(*args, **kwargs)

    monkeypatch.setattr(transport, "send", send)
    SimpleWorker([queue("bulk", redis)], connection=redis, serializer=JSONSerializer).work(burst=True, max_jobs=1)
    assert len(seen) == 3
    for (previous, _, _), (_, heard, live) in zip(seen, seen[1:]):
        assert heard is not None and heard.replace(tzinfo=timezone.utc) > previous  # it reported since
        assert set(ids) <= live


def test_a_retried_batch_does_not_give_way(app, session, member, double, redis, monkeypatch):
    """Handed back, the row that failed would start its tries and their back-off afresh."""
    from rq import SimpleWorker
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from service.directory import add_member
    from workers.queues import queue

    monkeypatch.setattr("workers.jobs.worker_app", lambda: app)
    people = [member, add_member(session, member.community, "M", "07700 900130", welcome=False)]
    session.commit()
    double.fail(people[1].phone, "500")  # every time
    for i, person in enumerate(people):
        queue_message(session, key=f"b{i}", to=person.phone, body=f"{i}", kind="broadcast", member=person)
    session.commit()
    community_id = member.community_id
    bulk = queue("bulk", redis)
    [job_id] = bulk.job_ids
    worker = SimpleWorker([bulk], connection=redis, serializer=JSONSerializer)
    worker.work(burst=True, max_jobs=1)  # row 0 sent, row 1 failed: the batch waits for its retry
    assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).retries_left == 5
    queue_message(session, key="alert", to="+447700900999", body="alert", kind="alert", community_id=community_id)
    session.commit()
    bulk.scheduled_job_registry.requeue(job_id)  # the retry is due
    worker.work(burst=True, max_jobs=1)
    assert bulk.job_ids == []  # nothing handed back
    assert job_id in bulk.scheduled_job_registry.get_job_ids()
    assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).retries_left == 4
    assert [m["body"] for m in double.messages] == ["0"]


def test_a_refused_accounts_message_first_tried_on_its_new_jobs_last_run_is_not_failed_after_one_try(
        app, config, clock, session, member, double):
    """The account's refusals are not the message's tries: held back behind an earlier row to the
    same member all through its new job, the row's first real try comes on the job's last run,
    and one 5xx (or its job's timeout) then leaves it pending for the sweeper, not failed."""
    from rq.timeouts import JobTimeoutException

    from service.sending import TRIES, deliver_batch

    # Written first, and due only once the account is fixed (not to hold the row back before).
    earlier = queue_message(session, key="e", to=member.phone, body="earlier", kind="broadcast", member=member,
                            due_at=clock.now + timedelta(days=1))
    session.commit()
    row = refused_for_a_whole_job(config, clock, session, member, double)
    session.execute(OutboundMessage.__table__.update().where(OutboundMessage.__table__.c.id == earlier.id)
                    .values(due_at=clock.now - timedelta(minutes=1)))
    session.commit()
    double.fail(member.phone, "500", times=TRIES + 1)
    runtime = app.extensions["hearth_runtime"]
    for run in range(TRIES):
        how = dict(transport=runtime.transport, limiter=runtime.limiter, sender="+441632960000",
                   final_attempt=run == TRIES - 1)
        with pytest.raises(TransientSendError):
            deliver_batch(session, [earlier.id, row.id], **how)
    assert fresh(session, earlier).state == "failed"
    got = fresh(session, row)
    assert (got.state, got.attempts, got.refusals) == ("pending", TRIES + 1, TRIES), got.error_message
    with pytest.raises(JobTimeoutException):  # its next job's last run times out: still its second try
        deliver(session, row.id, transport=TimesOut(), limiter=runtime.limiter, sender="+441632960000",
                final_attempt=True)
    assert fresh(session, row).state == "pending"


def test_a_send_whose_job_times_out_as_it_is_recorded_is_recorded_by_the_next_claim_not_sent_again(
        app, session, member, double, clock, redis, monkeypatch):
    """The carrier took the message; RQ's timeout cuts the record short. The row is left `sending`,
    and the claim that takes it over after the lease finds the receipt and records it."""
    from rq.timeouts import JobTimeoutException

    import service.sending

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    settle = service.sending._settle

    def times_out_when_recording(session_, outbox_id, attempt, state, **values):
        if state == "sent":
            raise JobTimeoutException("Task exceeded maximum timeout value (30 seconds)")
        return settle(session_, outbox_id, attempt, state, **values)

    monkeypatch.setattr(service.sending, "_settle", times_out_when_recording)
    how = dict(transport=runtime.transport, limiter=runtime.limiter, receipts=runtime.receipts,
               sender="+441632960000", final_attempt=False)
    with pytest.raises(JobTimeoutException):
        deliver(session, row.id, **how)
    session.rollback()
    monkeypatch.setattr(service.sending, "_settle", settle)
    assert fresh(session, row).state == "sending"
    clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
    assert deliver(session, row.id, **how) == "sent"
    got = fresh(session, row)
    assert (got.state, got.provider_sid, len(double.messages)) == ("sent", double.messages[0]["sid"], 1)


def test_a_send_whose_job_times_out_as_it_is_recorded_while_redis_is_down_is_recorded_not_sent_again(
        app, session, member, double, clock, monkeypatch):
    """RQ's timeout lands in the record of a message the carrier took (in a wait for Redis, say),
    with the database working and Redis down: no receipt can be kept, so the row itself records it
    at once, and the claim that takes it over after the lease finds it sent."""
    from redis import Redis
    from rq.timeouts import JobTimeoutException

    import service.sending
    from service.receipts import Receipts

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    settle = service.sending._settle
    stops = [JobTimeoutException("Task exceeded maximum timeout value (30 seconds)")]

    def times_out_once_when_recording(session_, outbox_id, attempt, state, **values):
        if state == "sent" and stops:
            raise stops.pop()
        return settle(session_, outbox_id, attempt, state, **values)

    monkeypatch.setattr(service.sending, "_settle", times_out_once_when_recording)
    redis_down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1, socket_timeout=1)
    how = dict(transport=runtime.transport, limiter=runtime.limiter, receipts=Receipts(redis_down),
               sender="+441632960000", final_attempt=False)
    with pytest.raises(JobTimeoutException):  # RQ still sees its job timed out
        deliver(session, row.id, **how)
    session.rollback()
    clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
    assert (deliver(session, row.id, **how), len(double.messages)) == ("skipped", 1)
    got = fresh(session, row)
    assert (got.state, got.provider_sid, got.attempts) == ("sent", double.messages[0]["sid"], 1)


def test_a_wait_for_the_rate_limit_longer_than_the_lease_keeps_the_claim(app, session, member, double, clock):
    """A 429's hold (or a queue of workers) keeps a send waiting past its lease: the worker still
    has the row, so the sweeper must not hand it to another one (which would count it cut off)."""
    from sqlalchemy.orm import Session

    from service.sending import claimable

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    lease = app.config["HEARTH"].send_lease
    runtime = app.extensions["hearth_runtime"]

    class LongHold:
        def acquire(self, sender, cost=1, alive=None, urgent=False):
            for _ in range(8):  # two leases, in quarters, each pause asked about first
                assert alive()
                clock.advance(seconds=lease / 4)
                with Session(app.extensions["hearth_db"].engine) as other:
                    assert other.scalar(select(OutboundMessage.id).where(claimable(clock.now))) is None
            return 2.0 * lease

    assert deliver(session, row.id, transport=runtime.transport, limiter=LongHold(), sender="+441632960000",
                   final_attempt=False) == "sent"
    got = fresh(session, row)
    assert (got.state, got.attempts, got.cut_off, len(double.messages)) == ("sent", 1, 0, 1)


def test_a_claim_taken_over_while_it_waits_gives_up_its_turn_and_sends_nothing(app, session, member, double, clock):
    """The worker stalled past its lease (its host paused) and another took the row and sent it: the
    first, still waiting for the rate limit, learns so at its next pause and stops."""
    from sqlalchemy.orm import Session

    from service.ratelimit import SendRateLimiter
    from tests.conftest import REDIS_URL

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    lease = app.config["HEARTH"].send_lease
    runtime = app.extensions["hearth_runtime"]
    second_worker = []

    def stall(seconds):
        if not second_worker:
            clock.advance(seconds=lease + 1)
            with Session(app.extensions["hearth_db"].engine) as other:
                second_worker.append(deliver(other, row.id, transport=runtime.transport, limiter=runtime.limiter,
                                             sender="+441632960001", final_attempt=False))

    limiter = SendRateLimiter(REDIS_URL, 0, sleep=stall)
    limiter.hold("+441632960000", 30)
    assert deliver(session, row.id, transport=runtime.transport, limiter=limiter, sender="+441632960000",
                   final_attempt=False) == "skipped"
    assert second_worker == ["sent"] and len(double.messages) == 1
    got = fresh(session, row)
    assert (got.state, got.attempts, got.cut_off) == ("sent", 2, 1)


def test_a_message_whose_worker_stops_each_time_is_failed_after_the_limit_not_sent_for_ever(app, session, member,
                                                                                           double, clock):
    """Each send reaches the carrier and then the worker dies (killed, out of memory): after its lease
    the row is taken over and sent again, CUT_OFF_LIMIT times in all; the next claim fails it."""
    from service.sending import CUT_OFF, CUT_OFF_LIMIT

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]

    class SendsThenDies:
        def send(self, *args, **kwargs):
            runtime.transport.send(*args, **kwargs)
            raise SystemExit("killed")  # not an Exception: nothing in deliver records it, as after kill -9

    for _ in range(CUT_OFF_LIMIT):
        with pytest.raises(SystemExit):
            deliver(session, row.id, transport=SendsThenDies(), limiter=runtime.limiter, sender="+441632960000",
                    final_attempt=False)
        session.rollback()
        assert send(app, session, row) == "skipped", "a live claim is not taken over"
        clock.advance(seconds=app.config["HEARTH"].send_lease + 1)
    assert send(app, session, row) == "failed"
    got = fresh(session, row)
    assert (got.state, got.cut_off, got.error_message) == ("failed", CUT_OFF_LIMIT, CUT_OFF)
    assert len(double.messages) == CUT_OFF_LIMIT
    assert send(app, session, row) == "skipped", "failed for good"


def test_a_21610_callback_for_a_message_submitted_before_the_members_start_leaves_them_in(app, session, member,
                                                                                         double, clock):
    """A Messaging Service often reports 21610 only in a status callback. The member's START was
    taken while the carrier was answering the submission: the STOP the callback reports is older."""
    from service.forms import StatusCallback
    from service.status import record_status

    engine = app.extensions["hearth_db"].engine
    runtime = app.extensions["hearth_runtime"]

    class StartMeanwhile:
        def send(self, *args, **kwargs):
            with engine.begin() as conn:  # the member's START, committed by a webhook while the carrier answers
                conn.execute(Member.__table__.update().where(Member.__table__.c.id == member.id)
                             .values(consent_at=clock.advance(seconds=1)))
            clock.advance(seconds=1)
            return runtime.transport.send(*args, **kwargs)

    row = queue_message(session, key="k", to=member.phone, body="hi", kind="reply", member=member)
    session.commit()
    assert deliver(session, row.id, transport=StartMeanwhile(), limiter=runtime.limiter, sender="+441632960000",
                   final_attempt=False) == "sent"
    record_status(session, StatusCallback(fresh(session, row).provider_sid, "failed", 21610))
    session.expire_all()
    assert session.get(Member, member.id).status == "active"
    assert fresh(session, row).error_code == 21610


def test_a_late_bad_number_callback_does_not_mark_a_phone_that_has_texted_since(app, session, member, double, clock,
                                                                               client):
    """The carrier's 21211 for an old message arrives after the member texted Hearth: the phone
    takes texts, and what is queued for them still goes."""
    from service.forms import StatusCallback
    from service.status import record_status
    from tests.support import sign, sms_form

    old = queue_message(session, key="a", to=member.phone, body="one", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, old) == "sent"
    clock.advance(seconds=60)
    form = sms_form("hello")
    assert client.post("/twilio/sms", data=form, headers={
        "X-Twilio-Signature": sign("http://localhost/twilio/sms", form, AUTH_TOKEN)}).status_code == 200
    clock.advance(seconds=60)
    record_status(session, StatusCallback(fresh(session, old).provider_sid, "failed", 21211))
    session.expire_all()
    assert "phone_error" not in (session.get(Member, member.id).fields or {})
    later = queue_message(session, key="b", to=member.phone, body="two", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, later) == "sent"


def test_a_send_that_stops_before_the_carrier_is_put_back_not_left_for_a_takeover(app, session, member, double):
    """Redis fails while the send waits for its turn: the row goes back (pending) at once for RQ's
    retry, rather than staying `sending` until the lease runs out and counting as cut off."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    row = queue_message(session, key="a", to=member.phone, body="one", kind="reply", member=member)
    session.commit()
    runtime = app.extensions["hearth_runtime"]

    class RedisGone:
        def acquire(self, sender, cost=1, alive=None, urgent=False):
            raise RedisConnectionError("Connection refused")

    with pytest.raises(RedisConnectionError):
        deliver(session, row.id, transport=runtime.transport, limiter=RedisGone(), sender="+441632960000",
                final_attempt=False)
    got = fresh(session, row)
    assert (got.state, got.claimed_at, got.error_message) == ("pending", None,
                                                             "stopped before the carrier: ConnectionError")
    assert send(app, session, row) == "sent"  # at once: no lease to wait out
    got = fresh(session, row)
    assert (got.cut_off, got.attempts, len(double.messages)) == (0, 2, 1)


def test_crisis_messages_and_alerts_wait_for_the_rate_limit_as_urgent_sends(app, session, member, double):
    """They take the next turn before broadcast messages other workers hold (`SendRateLimiter`)."""
    asked = {}

    class Recording:
        def acquire(self, sender, cost=1, alive=None, urgent=False):
            asked[body] = urgent
            return 0.0

    runtime = app.extensions["hearth_runtime"]
    for kind in ("crisis", "alert", "reply", "checkin", "broadcast"):
        body = f"a {kind}"
        row = queue_message(session, key=kind, to=member.phone, body=body, kind=kind, member=member)
        session.commit()
        assert deliver(session, row.id, transport=runtime.transport, limiter=Recording(), sender="+441632960000",
                       final_attempt=False) == "sent"
    assert asked == {"a crisis": True, "a alert": True, "a reply": False, "a checkin": False, "a broadcast": False}


def test_a_sender_refused_for_one_destination_only_fails_that_message(app, session, member, double):
    """21606 for a member abroad whom the number may not text, while it texts everyone else: the
    message is failed with the code, not left to wait for settings that are not wrong."""
    abroad = add_member(session, member.community, "Kim", "+33 6 12 34 56 78", welcome=False)
    session.commit()
    double.fail(abroad.phone, "21606")
    refused = queue_message(session, key="a", to=abroad.phone, body="hi", kind="broadcast", member=abroad)
    session.commit()
    with pytest.raises(SetupSendError):  # nothing has gone from the sender since: it may be the settings
        send(app, session, refused)
    assert fresh(session, refused).state == "pending"
    other = queue_message(session, key="b", to=member.phone, body="hi", kind="broadcast", member=member)
    session.commit()
    assert send(app, session, other) == "sent"
    assert send(app, session, refused) == "failed"
    got = fresh(session, refused)
    assert got.error_code == 21606 and "cannot send to this number" in got.error_message


def test_a_message_refused_for_hearths_account_for_two_days_is_failed_not_tried_for_ever(
        config, clock, session, member, double):
    from service.sending import SETUP_GIVE_UP

    row = queue_message(session, key="b", to=member.phone, body="hi", kind="broadcast", member=member)
    session.commit()
    wrong = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base=double.url,
                                           twilio_auth_token="rotated-last-night"),
                       overrides={"TESTING": True, "CLOCK": clock})
    try:
        with pytest.raises(SetupSendError):
            send(wrong, session, row)
        assert fresh(session, row).state == "pending"
        clock.advance(seconds=SETUP_GIVE_UP.total_seconds())
        assert send(wrong, session, row) == "failed"
    finally:
        wrong.extensions["hearth_db"].engine.dispose()
    got = fresh(session, row)
    assert got.error_code == 20003 and "refused for 2 days" in got.error_message


def test_a_reply_from_one_community_does_not_wait_for_another_communitys_retry(app, session, member, double):
    """A phone in two communities gets each one's texts from that community's own number, in a
    thread of its own: Elm's answer does not wait while Oak's waits out a retry's back-off."""
    from service.directory import create_community

    elm = create_community(session, "Elm House", "Europe/London", phone_number="+441632960001")
    session.commit()
    elm_member = add_member(session, elm, "Alex", member.phone, welcome=False)
    session.commit()
    double.fail(member.phone, "500", times=1)
    oak_reply = queue_message(session, key="oak", to=member.phone, body="Oak: thanks", kind="reply", member=member)
    session.commit()
    elm_reply = queue_message(session, key="elm", to=member.phone, body="Elm: thanks", kind="reply",
                              member=elm_member)
    session.commit()
    with pytest.raises(TransientSendError):
        send(app, session, oak_reply)
    assert send(app, session, elm_reply) == "sent"
    assert [(m["from"], m["body"]) for m in double.messages] == [("+441632960001", "Elm: thanks")]


def test_in_one_job_a_reply_from_one_community_does_not_wait_for_another_communitys_retry(app, session, member,
                                                                                         double):
    """The sweeper puts one number's rows on a queue in one job whatever community they are from:
    Oak's reply failing there holds back no text from Elm's own number, which is a thread of its own."""
    from service.directory import create_community
    from service.sending import deliver_batch

    elm = create_community(session, "Elm House", "Europe/London", phone_number="+441632960001")
    session.commit()
    elm_member = add_member(session, elm, "Alex", member.phone, welcome=False)
    session.commit()
    double.fail(member.phone, "500", times=1)
    rows = [queue_message(session, key="oak", to=member.phone, body="Oak: thanks", kind="reply", member=member),
            queue_message(session, key="elm", to=member.phone, body="Elm: thanks", kind="reply", member=elm_member),
            queue_message(session, key="oak2", to=member.phone, body="Oak: noted", kind="reply", member=member)]
    session.commit()
    runtime = app.extensions["hearth_runtime"]
    how = dict(transport=runtime.transport, limiter=runtime.limiter, sender="+441632960000", final_attempt=False)
    with pytest.raises(TransientSendError):
        deliver_batch(session, [row.id for row in rows], **how)
    assert [(m["from"], m["body"]) for m in double.messages] == [("+441632960001", "Elm: thanks")]
    assert fresh(session, rows[2]).state == "pending"  # Oak's next waits for Oak's first
