"""Races between webhooks, the clock, workers and operators' commands, on PostgreSQL.

Each test makes its interleaving with row locks held by a second connection (or an open
transaction of a second session) and waits for the other side to queue on them, as
test_inbound_races.py does; none depends on a sleep.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service.database import db
from service.directory import add_member, community_named, create_community
from service.models import AuditEvent, Community, Conversation, Member, OutboundMessage
from tests.conftest import AUTH_TOKEN, DATABASE
from tests.integration.test_inbound_races import HeldMember, hold, post_in_background, wait_for_lock_waiters  # noqa: F401
from tests.support import sign, sms_form

pytestmark = pytest.mark.skipif(DATABASE == "sqlite", reason="needs PostgreSQL row locks")


def in_thread(app, work, results: list) -> threading.Thread:
    """Run `work()` in an app context of its own, on a thread; its return value or exception goes to `results`."""
    def run():
        with app.app_context():
            try:
                results.append(work())
            except BaseException as exc:  # noqa: BLE001 - reported to the test
                results.append(exc)
            finally:
                db.session.remove()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- 1. A STOP racing `members import` / `member add` of the same phone to a community on the same sender ---------

def test_a_stop_while_an_import_adds_the_phone_elsewhere_on_the_same_sender_covers_the_new_membership(
        app, member, session):
    """Elm House texts from the configured sender, which is Oak House's number: one STOP covers both.

    The import of Alex into Elm House locks Alex's Oak House row (sharing_sender, FOR UPDATE) and
    finds Alex active, so the new membership is active with a welcome queued. Alex's STOP to Oak
    House queues behind that lock. Once the import's batch commits, the STOP opts out the rows its
    statement found, which cannot include the membership committed while it waited.
    """
    elm = create_community(session, "Elm House", "Europe/London", quiet_hours="off")
    session.commit()
    importer = Session(app.extensions["hearth_db"].engine, expire_on_commit=False)
    elm_in_import = importer.get(type(elm), elm.id)
    added = add_member(importer, elm_in_import, "Alex", "07700 900123", bulk=True, actor="cli:import:jo")
    importer.flush()  # the import's batch is open: Alex's Oak House row is locked, Elm House row written

    answers: list = []
    thread = post_in_background(app, sms_form("STOP"), answers)
    wait_for_lock_waiters(session, 1)
    importer.commit()  # the batch of 100 rows commits
    importer.close()
    thread.join(timeout=30)

    assert [a.status_code for a in answers] == [200]
    session.expire_all()
    assert session.get(Member, member.id).status == "opted_out"
    welcome = session.scalar(select(OutboundMessage).where(OutboundMessage.member_id == added.id))
    # Alex texted STOP to the sender Elm House texts from, and was told "You will get no more messages".
    assert (session.get(Member, added.id).status, welcome.state) == ("opted_out", "cancelled")


# --- 2. `flows start` (and the scheduled check-in) racing a member's PAUSE -----------------------------------------

def test_a_vote_started_while_the_member_texts_pause_does_not_undo_the_pause(app, member, session, hold, runner):
    """flows start lists the members it may start (paused ones left out), then locks each in turn.
    Alex's PAUSE 7 commits while the start waits for Alex's row: the start must see the pause."""
    held = hold(member.id)
    answers: list = []
    pause = post_in_background(app, sms_form("PAUSE 7"), answers)
    wait_for_lock_waiters(session, 1)  # PAUSE is first in the queue for Alex's row
    outputs: list = []
    start = in_thread(app, lambda: app.test_cli_runner().invoke(args=[
        "flows", "start", "vote", "--community", "Oak House", "--param", "question=Film night?",
        "--param", "options=Yes,No"]), outputs)
    wait_for_lock_waiters(session, 2)  # the start has listed Alex as active and waits behind the PAUSE
    held.release()
    pause.join(timeout=30)
    start.join(timeout=30)

    assert [a.status_code for a in answers] == [200]
    assert "Check-ins are paused for 7 days" in answers[0].get_data(as_text=True)
    assert outputs[0].exit_code == 0, outputs[0].output
    session.expire_all()
    alex = session.get(Member, member.id)
    votes = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all()
    resumed = session.scalars(select(AuditEvent.details).where(AuditEvent.action == "member.resumed")).all()
    assert (alex.status, votes, resumed) == ("paused", [], []), (
        f"status {alex.status} (paused until {alex.paused_until}), vote sent: {votes}, audit: {resumed};"
        f" {outputs[0].output.strip()}")


# --- 3. The clock's flow library believes a rolled-back flow version is stored -------------------------------------

def test_a_scheduled_run_cut_off_half_way_finishes_on_the_next_tick(app, community, session, hold, clock, caplog):
    """The run commits member by member. If it is cut off (here: the database drops the clock's
    connection while it waits for a member another transaction holds, as on a restart or
    failover), the members it started keep their check-in and the next tick starts the rest, each
    once. The first member's transaction also stored the flow's source (flow_versions)."""
    from service.models import Schedule
    from workers.clock import tick

    members = [add_member(session, community, name, phone, welcome=False)
               for name, phone in (("Alex", "07700 900123"), ("Sam", "07700 900124"), ("Priya", "07700 900125"))]
    session.commit()
    ids = [m.id for m in members]
    tick(app)  # the schedule rows are made, due at 10:00 London
    clock.now = clock.now.replace(hour=10, minute=0, second=5)

    held = hold(ids[2])  # Priya is texting: her row is locked
    results: list = []
    clock_thread = in_thread(app, lambda: tick(app), results)
    wait_for_lock_waiters(session, 1)  # the clock has started Alex and Sam and waits for Priya
    waiting = session.scalar(text("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                  " AND datname = current_database()"))
    session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": waiting})  # the connection drops
    session.rollback()
    held.release()
    clock_thread.join(timeout=30)
    assert results and not isinstance(results[0], BaseException), results
    started = select(Conversation.member_id).where(Conversation.flow_id == "checkin").order_by(Conversation.id)
    assert session.scalars(started).all() == ids[:2]  # kept, and their sends enqueued
    from workers.queues import PRIORITY, queue, row_ids
    redis = app.extensions["hearth_redis"]
    queued = {row for name in PRIORITY for job_id in queue(name, redis).job_ids for row in row_ids(job_id)}
    kept = set(session.scalars(select(OutboundMessage.id).where(OutboundMessage.kind == "checkin")))
    assert len(kept) == 2 and kept <= queued

    caplog.clear()
    tick(app)  # the next tick, a second later: the database is back
    session.expire_all()
    failures = [r.getMessage() + " " + str(r.exc_info[1]).splitlines()[0] for r in caplog.records
                if r.exc_info and "could not start" in r.getMessage()]
    due = session.scalar(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin"))
    assert session.scalars(started).all() == ids, (f"the schedule now waits for {due.isoformat()}", failures)
    checkins = session.scalars(select(OutboundMessage.member_id).where(OutboundMessage.kind == "checkin")
                               .order_by(OutboundMessage.member_id)).all()
    assert checkins == ids  # one each
    assert due.date() > clock.now.date()  # and the schedule moved on to tomorrow


def test_a_member_texts_back_while_the_scheduled_run_goes_on_to_the_rest(app, community, session, hold, clock):
    """A run over a community of thousands takes seconds; it holds one member at a time, so a
    member it has started can answer at once, not after the whole community (Twilio gives up on a
    webhook after 15 s)."""
    from tests.integration.test_inbound_races import replies
    from workers.clock import tick

    members = [add_member(session, community, name, phone, welcome=False)
               for name, phone in (("Alex", "07700 900123"), ("Sam", "07700 900124"), ("Priya", "07700 900125"))]
    session.commit()
    priya = members[2].id
    tick(app)
    clock.now = clock.now.replace(hour=10, minute=0, second=5)
    held = hold(priya)  # the run will wait for Priya
    results: list = []
    clock_thread = in_thread(app, lambda: tick(app), results)
    wait_for_lock_waiters(session, 1)
    answers: list = []
    alex = post_in_background(app, sms_form("4", from_number="+447700900123"), answers)
    while alex.is_alive():  # done, or queued behind the run's locks: never a sleep's guess
        blocked = session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                      " AND datname = current_database()"))
        session.rollback()
        if blocked >= 2:
            held.release()
            alex.join()
            clock_thread.join()
            pytest.fail("Alex's answer waited for the scheduled run to reach the end of the community")
        alex.join(timeout=0.02)
    assert answers[0].status_code == 200 and "Anything you want the team to know" in " ".join(replies(answers[0]))
    assert clock_thread.is_alive()  # still waiting for Priya
    held.release()
    clock_thread.join(timeout=30)
    assert results and not isinstance(results[0], BaseException), results
    assert results[0]["scheduled_starts"] == 3


# --- 4. `members import` into one community deadlocking with `flows start` in another on the same sender -----------

def test_an_import_and_a_vote_in_communities_sharing_a_sender_do_not_deadlock(app, member, session, runner):
    """add_member locks the phone's memberships on the same sender (FOR UPDATE) and keeps them
    until the import's batch commits, in the order of the CSV's lines; flows start locks its
    community's members in id order and keeps them until it commits. Sam's line comes before
    Alex's in the CSV; Alex's Oak House row comes before Sam's."""
    oak = community_named(session, "Oak House")
    sam = add_member(session, oak, "Sam", "07700 900124", welcome=False)
    elm = create_community(session, "Elm House", "Europe/London", quiet_hours="off")
    session.commit()
    elm_id = elm.id
    importer = Session(app.extensions["hearth_db"].engine, expire_on_commit=False)
    add_member(importer, importer.get(type(elm), elm_id), "Sam", "07700 900124", bulk=True)  # line 2 of the CSV
    importer.flush()  # Sam's Oak House row is locked by the import's open batch

    outputs: list = []
    start = in_thread(app, lambda: app.test_cli_runner().invoke(args=[
        "flows", "start", "vote", "--community", "Oak House", "--param", "question=Film night?",
        "--param", "options=Yes,No"]), outputs)
    wait_for_lock_waiters(session, 1)  # the vote has started Alex and waits for Sam
    imported: list = []

    def line_3():
        try:
            with importer.begin_nested():
                add_member(importer, importer.get(type(elm), elm_id), "Alex", "07700 900123", bulk=True)
            importer.commit()
            return "added"
        except Exception as exc:  # noqa: BLE001 - the import reports such a row as refused
            importer.rollback()
            return exc
    line = in_thread(app, line_3, imported)
    line.join(timeout=30)
    start.join(timeout=30)
    importer.close()
    assert imported == ["added"] and outputs[0].exit_code == 0, (imported, outputs[0].output)


# --- 5. carrier_refused decides on a member it read before it locked them ------------------------------------------

def test_a_21610_callback_queued_behind_the_members_stop_does_not_opt_them_out_again(app, member, session, hold):
    row = OutboundMessage(idempotency_key="broadcast:1:1", to_number=member.phone, body="Film night", kind="broadcast",
                          queue="bulk", member_id=member.id, community_id=member.community_id, state="sent",
                          provider_sid="SM" + "a" * 32, due_at=member.created_at, attempts=1, segments=1,
                          created_at=member.created_at, updated_at=member.created_at, sent_at=member.created_at)
    session.add(row)
    session.commit()
    held = hold(member.id)
    answers: list = []
    stop = post_in_background(app, sms_form("STOP"), answers)
    wait_for_lock_waiters(session, 1)
    callback = {"MessageSid": row.provider_sid, "MessageStatus": "undelivered", "ErrorCode": "21610",
                "AccountSid": "AC" + "1" * 32, "To": member.phone, "From": "+441632960000"}
    url = "https://hearth.example.org/twilio/status"
    status = threading.Thread(target=lambda: answers.append(app.test_client().post(
        "/twilio/status", data=callback, headers={"X-Twilio-Signature": sign(url, callback, AUTH_TOKEN)})))
    status.start()
    wait_for_lock_waiters(session, 2)  # the callback read Alex (active) and queues behind the STOP
    held.release()
    stop.join(timeout=30)
    status.join(timeout=30)
    assert sorted(a.status_code for a in answers) == [200, 200]
    session.expire_all()
    opt_outs = session.execute(select(AuditEvent.actor, AuditEvent.details)
                               .where(AuditEvent.action == "member.opted_out")).all()
    assert [actor for actor, _ in opt_outs] == [f"member:{member.id}"], opt_outs


# --- Races that were already handled ---------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", [("3", "STOP"), ("STOP", "3"), ("3", "HELP")])
def test_an_answer_and_a_keyword_queued_together_are_each_handled_once(app, member, session, hold, post_signed,
                                                                         first, second):
    post_signed("/twilio/sms", sms_form("CHECKIN"))
    from tests.integration.test_inbound_races import queued_in_turn
    answers = queued_in_turn(app, session, hold(member.id), sms_form(first), sms_form(second))
    assert [a.status_code for a in answers] == [200, 200]
    session.expire_all()
    from service.models import InboundMessage, Result
    handled = session.scalars(select(InboundMessage.handled_as).order_by(InboundMessage.id)).all()
    moods = session.scalars(select(Result.value).where(Result.name == "mood")).all()
    active = session.scalar(select(func.count(Conversation.id)).where(Conversation.active))
    if first == "STOP":
        assert handled[1:] == ["opt_out", "ignored_opted_out"] and moods == [] and active == 0
    elif second == "STOP":
        assert handled[1:] == ["flow:checkin", "opt_out"] and moods == ["3"] and active == 0
    else:
        assert handled[1:] == ["flow:checkin", "help"] and moods == ["3"] and active == 1


def test_an_answer_and_its_timer_queued_together(app, member, session, hold, post_signed, clock):
    """The check-in's expiry fires while Alex's answer waits: one of them wins, whole."""
    from service.models import Result, Timer
    from service.timers import fire_due_timers
    post_signed("/twilio/sms", sms_form("CHECKIN"))
    clock.advance(hours=15)  # past the expiry (14 h)
    held = hold(member.id)
    answers: list = []
    text_in = post_in_background(app, sms_form("3"), answers)
    wait_for_lock_waiters(session, 1)
    fired: list = []
    timer = in_thread(app, lambda: fire_due_timers(db.session), fired)
    wait_for_lock_waiters(session, 2)
    held.release()
    text_in.join(timeout=30)
    timer.join(timeout=30)
    assert [a.status_code for a in answers] == [200] and not isinstance(fired[0], BaseException), fired
    session.expire_all()
    assert session.scalar(select(func.count(Timer.id)).where(Timer.fired_at.is_(None))) == 0
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.active)) <= 1
    assert session.scalar(select(func.count(Result.id)).where(Result.name == "mood")) == 1


# --- Two operators creating communities at once ------------------------------------------------------------------

@pytest.mark.parametrize("second", [dict(name="Elm House"), dict(name="oak house", phone_number="+441632960001")])
def test_two_community_creates_at_once_cannot_both_take_what_only_one_may(app, session, second):
    """Both without a number of their own (texts to the shared number could name neither), or both
    called Oak House: the second create waits for the first and is refused, as it would be after it."""
    from service.exceptions import Conflict

    create_community(session, "Oak House", "Europe/London")  # not committed yet: the first operator's
    results: list = []
    thread = in_thread(app, lambda: create_community(db.session, **second), results)
    watcher = Session(app.extensions["hearth_db"].engine)
    wait_for_lock_waiters(watcher, 1)
    session.commit()
    thread.join()
    [refused] = results
    assert isinstance(refused, Conflict), refused
    assert [c.name for c in session.scalars(select(Community))] == ["Oak House"]
    watcher.close()
