"""Texts that wait for a member another transaction holds (PostgreSQL row locks; SQLite runs one writer at a time).

Each test holds the member's row lock in a transaction of its own, lets webhooks queue up behind it,
changes what it needs to, and commits: the webhooks then run on what is true when they get the member.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from service.database import make_engine

from service.models import Conversation, InboundMessage, Member, Result
from tests.conftest import AUTH_TOKEN, DATABASE
from tests.support import sign, sms_form, twiml_messages

pytestmark = pytest.mark.skipif(DATABASE == "sqlite", reason="needs PostgreSQL row locks")

URL = "https://hearth.example.org/twilio/sms"


class HeldMember:
    """A transaction holding one member's row lock until `release()`."""

    def __init__(self, database_url: str, member_id: int) -> None:
        self.engine = make_engine(database_url)
        self.conn = self.engine.connect()
        self.conn.execute(text("SELECT id FROM members WHERE id = :m FOR UPDATE"), {"m": member_id})

    def run(self, sql: str, **params) -> None:
        self.conn.execute(text(sql), params)

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.commit()
            self.conn.close()
        self.engine.dispose()


@pytest.fixture
def hold(database_url):
    """Hold a member; always let go at the end, so a failed test leaves no lock for the next one."""
    held: list[HeldMember] = []

    def take(member_id: int) -> HeldMember:
        held.append(HeldMember(database_url, member_id))
        return held[-1]

    yield take
    for h in held:
        h.release()


def post_in_background(app, form: dict, answers: list) -> threading.Thread:
    headers = {"X-Twilio-Signature": sign(URL, form, AUTH_TOKEN)}
    thread = threading.Thread(target=lambda: answers.append(app.test_client().post("/twilio/sms", data=form,
                                                                                   headers=headers)))
    thread.start()
    return thread


def wait_for_lock_waiters(session, count: int) -> None:
    """Until `count` backends are waiting for a row lock (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        waiting = session.scalar(text("SELECT count(*) FROM pg_stat_activity"
                                      " WHERE wait_event_type = 'Lock' AND datname = current_database()"))
        session.rollback()
        if waiting >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{count} webhooks never waited for the member")


def replies(response) -> list[str]:
    return twiml_messages(response.get_data(as_text=True))


def test_two_copies_of_a_flow_message_waiting_together_are_handled_once(app, member, session, hold):
    held = hold(member.id)
    form, answers = sms_form("CHECKIN"), []
    threads = [post_in_background(app, form, answers) for _ in range(2)]
    wait_for_lock_waiters(session, 2)
    held.release()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].get_data() == answers[1].get_data()
    assert "How are you today?" in replies(answers[0])[0]
    assert session.scalar(select(func.count(InboundMessage.id))) == 1
    assert session.scalar(select(func.count(Conversation.id))) == 1


def test_two_texts_from_one_member_waiting_together_both_get_answers(app, member, session, hold):
    held = hold(member.id)
    answers: list = []
    threads = [post_in_background(app, sms_form("CHECKIN"), answers) for _ in range(2)]
    wait_for_lock_waiters(session, 2)
    held.release()
    for thread in threads:
        thread.join(timeout=30)
    assert [a.status_code for a in answers] == [200, 200]
    assert session.scalar(select(func.count(InboundMessage.id))) == 2
    # The second text was read as an answer to the check-in the first one started.
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.active)) == 1


def test_a_text_waiting_while_its_conversation_ends_does_not_resume_it(app, member, session, hold, post_signed):
    assert "How are you today?" in replies(post_signed("/twilio/sms", sms_form("CHECKIN")))[0]
    held = hold(member.id)
    answers: list = []
    thread = post_in_background(app, sms_form("1"), answers)
    wait_for_lock_waiters(session, 1)
    # Meanwhile the clock expires the check-in (as service/timers.py would, holding the member).
    held.run("UPDATE conversations SET active = false, ended_reason = 'expired', state = NULL WHERE member_id = :m",
             m=member.id)
    held.release()
    thread.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 200
    session.expire_all()
    assert session.scalar(select(func.count(Result.id))) == 0  # no mood saved onto the ended check-in
    [ended] = session.scalars(select(Conversation).where(Conversation.flow_id == "checkin")).all()
    assert (ended.active, ended.ended_reason, ended.state) == (False, "expired", None)


def second_membership(session) -> Member:
    """Alex's membership of a second community, Elm House, which has no number of its own: it texts
    from the configured sender, Oak House's number, so one STOP covers both memberships; a text to
    +441632960001, a number no community has, reaches it as the one community without a number."""
    from service.directory import add_member, create_community

    other = create_community(session, "Elm House", "Europe/London")
    second = add_member(session, other, "Alex", "07700 900123", welcome=False)
    session.commit()
    return second


def queued_in_turn(app, session, held, *forms: dict) -> list:
    """Post each form once the ones before it wait for a lock; then let `held` go. The answers."""
    answers: list = []
    threads = []
    for waiting, form in enumerate(forms, 1):
        threads.append(post_in_background(app, form, answers))
        wait_for_lock_waiters(session, waiting)
    held.release()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_stops_from_one_phone_to_two_communities_at_once_do_not_deadlock(app, member, session, hold):
    """Each STOP reaches every membership of the phone; the two must take those locks in one order."""
    second = second_membership(session)
    # The STOP to Oak House queues for Alex's Oak House row; then the one to Elm House comes in.
    answers = queued_in_turn(app, session, hold(member.id), sms_form("STOP"), sms_form("STOP", to="+441632960001"))
    assert sorted(a.status_code for a in answers) == [200, 200]
    assert sorted(len(replies(a)) for a in answers) == [0, 1]  # one confirmation, then nothing
    session.expire_all()
    assert {session.get(Member, member.id).status, session.get(Member, second.id).status} == {"opted_out"}


def test_yes_and_stop_from_one_phone_to_two_communities_at_once_do_not_deadlock(app, member, session, hold,
                                                                                 post_signed, caplog):
    """YES from a member who opted out learns late that it opts in: it lets go and takes the phone's locks in order."""
    second = second_membership(session)
    post_signed("/twilio/sms", sms_form("STOP"))
    # A STOP to Oak House queues for Alex's Oak House row, the first of the phone's rows in id order.
    # A YES to Elm House takes Alex's Elm House row and finds Alex opted out. Were it to keep that
    # row while it queues for the Oak House one, the STOP would take Oak House and wait for it: a deadlock.
    answers = queued_in_turn(app, session, hold(member.id), sms_form("STOP"), sms_form("YES", to="+441632960001"))
    assert [a.status_code for a in answers] == [200, 200]
    assert "running again after a conflict" not in caplog.text  # a deadlock's victim would be run again
    session.expire_all()
    handled = session.scalars(select(InboundMessage.handled_as).order_by(InboundMessage.id)).all()
    assert handled[-2:] == ["opt_out_repeat", "opt_in"]
    assert {session.get(Member, member.id).status, session.get(Member, second.id).status} == {"active"}
