"""Hearth end to end: signed webhooks in, the outbox through RQ to the double, callbacks back, failures survived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service import create_app
from service.config import Config
from service.database import db
from service.directory import add_member, create_community
from service.models import Community, OutboundMessage
from service.outbox import queue_message
from tests.conftest import AUTH_TOKEN
from tests.e2e.stack import wait_until
from tests.support import sms_form, twiml_messages


@pytest.fixture
def db_app(stack_env):
    app = create_app(Config.from_env(stack_env))
    with app.app_context():
        community = create_community(db.session, "Oak House", "Europe/London", phone_number="+441632960000",
                                     quiet_hours="off")  # it runs on the wall clock, at any hour
        db.session.commit()
        yield app
    app.extensions["hearth_db"].engine.dispose()


def members(count: int):
    community = db.session.scalar(select(Community))
    made = [add_member(db.session, community, f"M{i}", f"+4477009{i:05d}", welcome=False) for i in range(count)]
    db.session.commit()
    return made


def queue_batch(people, per_member: int, prefix: str) -> list[str]:
    bodies = []
    for person in people:
        for n in range(per_member):
            body = f"{prefix} {person.id}-{n}"
            queue_message(db.session, key=body, to=person.phone, body=body, kind="broadcast", member=person)
            bodies.append(body)
    db.session.commit()
    return bodies


def read(statement):
    """Run a query and end the transaction at once: on SQLite an open one holds the write lock."""
    try:
        return db.session.execute(statement).all()
    finally:
        db.session.rollback()


def states() -> dict[str, int]:
    return dict(read(select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)))


def test_member_added_from_the_cli_gets_a_delivered_welcome_and_can_text_in(stack, db_app, double):
    stack.start()
    added = subprocess.run([str(Path(sys.executable).parent / "hearth"), "member", "add", "--community", "Oak House",
                            "--name", "Alex", "--phone", "07700 900123"], env=stack.env, capture_output=True,
                           text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    [welcome] = wait_until(lambda: double.messages, what="the welcome at the double")
    assert welcome["to"] == "+447700900123" and "STOP" in welcome["body"]
    wait_until(lambda: read(select(OutboundMessage.delivery_status)) == [("delivered",)],
               what="the delivered callback to reach the outbox")

    answer = stack.post_signed("/twilio/sms", sms_form("HELP", from_number="+447700900123"), AUTH_TOKEN)
    assert answer.status_code == 200
    assert "Samaritans" in twiml_messages(answer.text)[0]
    assert stack.post_signed("/twilio/sms", sms_form("HELP"), "not-the-token").status_code == 403


def test_redis_flushed_while_messages_are_pending_loses_nothing(stack, db_app, double, redis):
    stack.start(workers=0)
    bodies = queue_batch(members(10), 3, "flushed")
    redis.flushdb()  # every job is gone; only the outbox remembers
    stack.start_worker()
    wait_until(lambda: states().get("sent") == len(bodies), timeout=60, what="every row sent")
    received = Counter(m["body"] for m in double.messages)
    assert set(received) == set(bodies)
    assert max(received.values()) == 1, "each message delivered once"


def test_redis_flushed_under_a_running_worker_loses_nothing_and_sends_nothing_twice(stack, db_app, double, redis):
    double.configure(answer_delay=0.02)  # a carrier slow enough that the flush comes with most rows unsent
    stack.start(workers=1)
    bodies = queue_batch(members(20), 3, "under way")
    wait_until(lambda: len(double.messages) >= 10, timeout=60, what="the sending to be under way")
    redis.flushdb()  # the queues, the batch in hand's record, the started registry: all gone
    assert len(double.messages) < len(bodies) - 25, "the flush came while jobs were still queued"
    wait_until(lambda: states().get("sent") == len(bodies), timeout=90, what="every row sent after the flush")
    received = Counter(m["body"] for m in double.messages)
    assert set(received) == set(bodies)
    assert max(received.values()) == 1, "each message delivered once"


def test_worker_killed_mid_send_still_delivers_everything_and_the_one_in_flight_at_most_twice(stack, db_app,
                                                                                              double):
    stack.start(workers=1)
    people = members(20)
    bodies = queue_batch(people, 10, "batch")
    wait_until(lambda: len(double.messages) >= 40, timeout=60, what="the batch to be under way")
    # The carrier goes slow: the next message is taken, and its answer held back while the worker dies.
    double.configure(answer_delay=5)
    taken = len(double.messages)
    wait_until(lambda: len(double.messages) > taken, timeout=30, what="a message taken and not yet answered")
    stack.kill_worker(stack.workers[0])
    hit = double.messages[taken]["body"]  # the one the kill hit: the carrier has it, the worker never heard
    in_flight = states().get("sending", 0)  # claimed but not recorded: the only rows that may go twice
    double.configure(answer_delay=0)
    stack.start_worker()
    wait_until(lambda: states().get("sent") == len(bodies), timeout=90, what="every row sent after the kill")
    received = Counter(m["body"] for m in double.messages)
    assert set(received) == set(bodies), "every message delivered"
    duplicates = sum(count - 1 for count in received.values())
    print(f"kill -9 mid-send: {len(bodies)} messages, {in_flight} in flight at the kill, {duplicates} sent twice")
    assert in_flight == 1 and duplicates == 1  # the carrier had it; Hearth never heard: at least once
    assert [body for body, count in received.items() if count > 1] == [hit], "only the one the kill hit went twice"
    # Hearth counted it: the row the worker died sending is the one row taken over from a cut-off send.
    cut_off = read(select(OutboundMessage.body, OutboundMessage.cut_off).where(OutboundMessage.cut_off > 0))
    assert cut_off == [(hit, 1)]


def test_a_worker_stopped_by_a_deploy_mid_batch_ends_after_the_send_in_hand(stack, db_app, double):
    """SIGTERM while a batch is under way: the send in hand is answered and recorded, the rows not
    tried go back to the front of the queue, and the worker ends within moments, not after the whole
    batch (here 25 sends of 2 s), which a platform's grace (10 s for `docker stop`, 30 s on Heroku)
    would cut short with a SIGKILL mid-send: a message that may go twice, and rows left to the lease."""
    double.configure(answer_delay=2)
    stack.start(workers=1)
    bodies = queue_batch(members(25), 1, "deploy")  # 25 recipients' rows, committed together: one batch
    wait_until(lambda: double.messages, timeout=60, what="the batch under way")
    worker = stack.workers[0]
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=15)
    assert states().get("sending", 0) == 0 and len(double.messages) < 5, "nothing cut off; the rest not sent"
    double.configure(answer_delay=0)
    stack.start_worker()
    wait_until(lambda: states().get("sent") == len(bodies), timeout=60, what="every row sent by the next worker")
    received = Counter(m["body"] for m in double.messages)
    assert set(received) == set(bodies) and max(received.values()) == 1, "each message delivered once"
    assert read(select(func.count()).where(OutboundMessage.cut_off > 0)) == [(0,)]


def test_callbacks_posted_out_of_order_and_twice_leave_every_message_delivered(stack, db_app, double):
    """The double posts each message's delivered before its sent, and every callback twice, signed, to
    the running web app: every message ends delivered, each (sid, status) stored once."""
    from service.models import StatusEvent

    double.configure(out_of_order=True, duplicate_callbacks=True)
    stack.start()
    bodies = queue_batch(members(5), 2, "reordered")
    wait_until(lambda: states().get("sent") == len(bodies), timeout=60, what="every row sent")
    wait_until(lambda: len(double.callbacks) == 4 * len(bodies), timeout=60, what="every callback posted")
    assert {c["http_status"] for c in double.callbacks} == {200}
    firsts = {}
    for c in double.callbacks:
        firsts.setdefault(c["sid"], c["status"])
    assert set(firsts.values()) == {"delivered"}, "the double posted delivered first"
    assert read(select(OutboundMessage.delivery_status)) == [("delivered",)] * len(bodies)
    assert read(select(func.count(StatusEvent.id))) == [(2 * len(bodies),)]


def test_malformed_and_replayed_webhooks_over_http(stack, db_app, double):
    """Through gunicorn: a signed form missing a field is a 400 naming it; a STOP whose MessageSid is
    posted four times at once (Twilio's retries, across the web workers) is handled once."""
    from concurrent.futures import ThreadPoolExecutor

    from service.models import AuditEvent, InboundMessage

    stack.start()
    members(1)
    form = sms_form("STOP", from_number="+447700900000")
    malformed = {k: v for k, v in form.items() if k != "From"}
    refused = stack.post_signed("/twilio/sms", malformed, AUTH_TOKEN)
    assert refused.status_code == 400 and "missing form field From" in refused.text
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: stack.post_signed("/twilio/sms", form, AUTH_TOKEN), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.text for a in answers}) == 1 and len(twiml_messages(answers[0].text)) == 1
    assert read(select(func.count(InboundMessage.id))) == [(1,)]
    assert read(select(func.count(AuditEvent.id)).where(AuditEvent.action == "member.opted_out")) == [(1,)]


def test_a_check_in_conversation_over_http(stack, db_app, double):
    from service.models import Alert, Result

    stack.start()
    members(1)
    phone = "+447700900000"

    def say(body):
        response = stack.post_signed("/twilio/sms", sms_form(body, from_number=phone), AUTH_TOKEN)
        assert response.status_code == 200
        return twiml_messages(response.text)

    assert any("1-5" in text for text in say("checkin"))
    say("1")
    say("SKIP")
    assert read(select(Result.value).where(Result.name == "mood")) == [("1",)]
    assert read(select(Alert.severity)) == [("high",)]
