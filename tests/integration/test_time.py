"""Schedules, timers, quiet hours and pauses across UK clock changes and clock outages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from service.models import Conversation, OutboundMessage, Timer
from service.schedules import run_schedules
from service.timers import fire_due_timers
from tests.integration.test_flows_in_service import _app_with_flows, _walk

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")


def _checkins_local(session):
    sent = session.scalars(select(OutboundMessage.created_at).where(OutboundMessage.kind == "checkin")
                           .order_by(OutboundMessage.id))
    return [f"{m.astimezone(LONDON):%d %H:%M %Z}" for m in sent]


def _app_at(config, clock, tmp_path, at):
    from flows.registry import BUNDLED_DIR
    original = (BUNDLED_DIR / "checkin.yaml").read_text()
    (tmp_path / "checkin.yaml").write_text(original.replace('at: "10:00"', f'at: "{at}"'))
    return _app_with_flows(config, clock, tmp_path)


@pytest.mark.parametrize("start, until, at, sent", [
    # spring forward: 01:30 does not exist on Sunday 29 March 2026
    (datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC), "01:30",
     ["28 01:30 GMT", "29 02:00 BST", "30 01:30 BST"]),
    (datetime(2026, 3, 27, 12, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC), "09:00",
     ["28 09:00 GMT", "29 09:00 BST", "30 09:00 BST"]),
    # fall back: 01:30 happens twice on Sunday 25 October 2026
    (datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC), "01:30",
     ["24 01:30 BST", "25 01:30 BST", "26 01:30 GMT"]),
    (datetime(2026, 10, 23, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC), "09:00",
     ["24 09:00 BST", "25 09:00 GMT", "26 09:00 GMT"]),
])
def test_daily_check_in_across_uk_clock_changes(config, clock, tmp_path, redis, start, until, at, sent):
    from service.database import db
    clock.now = start
    app = _app_at(config, clock, tmp_path, at)
    with app.app_context():
        _walk(db.session, clock, until, step=timedelta(minutes=5))
        got = _checkins_local(db.session)
    app.extensions["hearth_db"].engine.dispose()
    assert got == sent


# --- votes and meetings: closing times enforced only by the clock --------------------------------

from tests.integration.test_flows_in_service import _start_vote, say  # noqa: E402
from service.models import Result  # noqa: E402


def test_a_vote_sent_after_closes_at_is_not_counted_when_the_clock_is_late(runner, post_signed, member, session,
                                                                             clock):
    """The clock is down (or behind on its timer backlog) from 17:30 to 19:00; voting closed at 18:00."""
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    _start_vote(runner, "2026-11-23T18:00")
    say(post_signed, "1")
    _walk(session, clock, datetime(2026, 11, 23, 17, 30, tzinfo=UTC))  # clock healthy until 17:30
    clock.now = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)  # half an hour after voting closed
    replies = say(post_signed, "2")
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "Yes", replies
    assert replies[0].startswith("Voting has closed"), replies  # said first, then the text is read afresh
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.active)) == 0
    assert fire_due_timers(session) == {"timers": 0}  # the clock, back, finds nothing left to fire


def test_a_vote_closing_after_the_flows_expiry_is_refused(runner, member, session, clock):
    """The vote's conversations end after 14 days: one open for three weeks would die silently on day 14."""
    clock.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", "closes_at=2026-11-23T18:00"])
    assert result.exit_code != 0 and "after vote's conversations end (14 days after they start)" in result.output
    assert session.scalars(select(OutboundMessage.body)).all() == []


def test_a_meeting_rsvp_reminder_does_not_ask_about_a_meeting_already_over(runner, member, session, clock):
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # after the day's 10:00 check-in time
    started = runner.invoke(args=["flows", "start", "meeting_rsvp", "--community", "Oak House", "--param",
                                  'meeting={"title": "Small group", "starts_at": "2026-11-23T14:00"}'])
    assert started.exit_code == 0, started.output
    _walk(session, clock, datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
    late = session.scalars(select(OutboundMessage).where(OutboundMessage.created_at
                                                        > datetime(2026, 11, 23, 14, 0, tzinfo=UTC))).all()
    assert [(m.created_at.astimezone(LONDON).strftime("%H:%M"), m.body) for m in late] == []
    rsvp = session.scalar(select(Conversation).where(Conversation.flow_id == "meeting_rsvp"))
    assert (rsvp.active, rsvp.updated_at) == (False, datetime(2026, 11, 23, 14, 0, tzinfo=UTC))


def test_a_meeting_after_the_rsvps_conversations_end_is_refused(runner, member, session, clock):
    """meeting_rsvp's conversations end after 2 days: a reminder of a meeting five days away would
    end before it, silently, and a member's later YES would get the menu."""
    clock.now = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    result = runner.invoke(args=["flows", "start", "meeting_rsvp", "--community", "Oak House", "--param",
                                 'meeting={"title": "Community meeting", "starts_at": "2026-11-27T10:00"}'])
    assert result.exit_code == 2 and "meeting.starts_at is 2026-11-27 10:00, after meeting_rsvp's" in result.output
    assert session.scalars(select(OutboundMessage.body)).all() == []


def test_a_meeting_that_already_started_is_refused(runner, member, session, clock):
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    result = runner.invoke(args=["flows", "start", "meeting_rsvp", "--community", "Oak House", "--param",
                                 'meeting={"title": "Small group", "starts_at": "2026-11-23T10:00"}'])
    sent = session.scalars(select(OutboundMessage.body)).all()
    assert result.exit_code != 0 and sent == [], (result.output, sent)


# --- two clocks at once --------------------------------------------------------------------------

import threading  # noqa: E402


def _in_threads(apps, task):
    from service.database import db
    done, errors = [], []

    def run(app):
        try:
            with app.app_context():
                done.append(task(db.session))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return done, errors


def test_two_clocks_at_once_start_each_check_in_and_fire_each_reminder_once(config, clock, redis, session, community):
    from service import create_app
    from service.directory import add_member
    for n in range(40):
        add_member(session, community, f"M{n}", f"07700 900{n + 200:03d}", welcome=False)
    session.commit()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    run_schedules(session)
    apps = [create_app(config, overrides={"CLOCK": clock}) for _ in range(3)]
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    done, errors = _in_threads(apps, run_schedules)
    assert errors == [] and sum(d["scheduled_starts"] for d in done) == 40, (done, errors)
    clock.now = datetime(2026, 11, 23, 13, 0, 10, tzinfo=UTC)
    done, errors = _in_threads(apps, fire_due_timers)
    for app in apps:
        app.extensions["hearth_db"].engine.dispose()
    session.expire_all()
    reminders = session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "reminder"))
    checkins = session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "checkin"))
    assert (errors, checkins, reminders, sum(d["timers"] for d in done)) == ([], 40, 40, 40)



def test_two_clocks_making_a_new_community_s_schedule_at_once_share_the_first_one_s_row(
        config, clock, redis, session, community):
    """The second clock to write a new community's schedule row, after both looked and found none,
    uses the first one's row rather than failing on the unique key (and logging a traceback)."""
    from sqlalchemy import event

    from service import create_app
    from service.database import db
    from service.models import Schedule
    from tests.conftest import DATABASE

    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    community_id = community.id
    second = create_app(config, overrides={"CLOCK": clock})
    first_ran = []

    @event.listens_for(second.extensions["hearth_db"].engine, "before_cursor_execute")
    def first_clock_writes_meanwhile(conn, _cursor, statement, *_):
        if first_ran or not statement.startswith("INSERT INTO schedules"):
            return
        first_ran.append(True)
        if DATABASE == "sqlite":
            # SQLite's writers take turns (BEGIN IMMEDIATE): the first clock could not write while
            # this one holds the lock, so its row is written here, after this clock looked.
            conn.exec_driver_sql("INSERT INTO schedules (community_id, flow_id, next_due_at) VALUES (?, ?, ?)",
                                 (community_id, "checkin", "2026-11-23 10:00:00.000000"))
        else:  # the first clock, on a connection of its own, writes and commits
            assert run_schedules(session) == {"scheduled_starts": 0}

    try:
        with second.app_context():
            assert run_schedules(db.session) == {"scheduled_starts": 0}
    finally:
        second.extensions["hearth_db"].engine.dispose()
    assert first_ran
    session.expire_all()
    rows = session.scalars(select(Schedule)).all()
    assert [(row.community_id, row.flow_id, row.next_due_at) for row in rows] == [
        (community_id, "checkin", datetime(2026, 11, 23, 10, 0, tzinfo=UTC))]

    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)  # and the row runs, once
    assert run_schedules(session) == {"scheduled_starts": 0}  # the community has no members
    assert session.scalar(select(Schedule.next_due_at)) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

# --- pauses across clock changes (checked; these pass) -------------------------------------------

@pytest.mark.parametrize("paused_at, words, until, sent", [
    # PAUSE 1 before Saturday's check-in: Saturday's is skipped, Sunday's (first day of BST) is sent
    (datetime(2026, 3, 28, 9, 30, tzinfo=UTC), "PAUSE 1", datetime(2026, 3, 30, 12, tzinfo=UTC),
     ["29 10:00 BST", "30 10:00 BST"]),
    # PAUSE 1 after Saturday's (BST) check-in: Sunday (GMT again) is skipped, Monday's is sent
    (datetime(2026, 10, 24, 9, 30, tzinfo=UTC), "PAUSE 1", datetime(2026, 10, 26, 12, tzinfo=UTC),
     ["26 10:00 GMT"]),
])
def test_a_pause_ends_on_the_right_morning_across_a_clock_change(post_signed, member, session, clock, paused_at,
                                                                   words, until, sent):
    clock.now = paused_at - timedelta(minutes=1)
    run_schedules(session)
    clock.now = paused_at
    say(post_signed, words)
    _walk(session, clock, until, step=timedelta(minutes=15))
    assert _checkins_local(session) == sent


# --- a new timezone between the new zone's slot and the old one's --------------------------------

def test_a_timezone_put_right_before_the_days_check_in_does_not_lose_that_day(session, community, member, clock):
    """Oak House was made on London time but is in Berlin. The operator puts it right at 09:30 UTC
    (10:30 in Berlin): London's 10:00 has not run, Berlin's 10:00 was half an hour ago, within the
    hour a late run is still made. Nobody gets a check-in that day."""
    from service.directory import update_community
    clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    update_community(session, community, timezone="Europe/Berlin")
    session.commit()
    _walk(session, clock, datetime(2026, 11, 23, 23, 0, tzinfo=UTC), step=timedelta(minutes=5))
    sent = session.scalars(select(OutboundMessage.created_at).where(OutboundMessage.kind == "checkin")).all()
    assert [f"{m.astimezone(ZoneInfo('Europe/Berlin')):%d}" for m in sent] == ["23"]  # one, at the next tick


# --- closing times written without an offset ------------------------------------------------------

@pytest.mark.parametrize("written, closes", [
    ("2026-06-12T18", datetime(2026, 6, 12, 17, 0, tzinfo=UTC)),      # 18:00 in London (BST)
    ("2026-06-12 18:00", datetime(2026, 6, 12, 17, 0, tzinfo=UTC)),
    ("20260612T1800", datetime(2026, 6, 12, 17, 0, tzinfo=UTC)),
    ("2026-06-12T18:00+01:00", datetime(2026, 6, 12, 17, 0, tzinfo=UTC)),
])
def test_a_closing_time_without_an_offset_is_always_local(runner, member, session, clock, written, closes):
    clock.now = datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", f"closes_at={written}"])
    assert result.exit_code == 0, result.output
    question = session.scalar(select(OutboundMessage.body).where(OutboundMessage.kind == "flow"))
    no_answer = session.scalar(select(Timer.due_at).where(Timer.kind == "no_answer"))
    assert no_answer == closes, question


@pytest.mark.parametrize("written", ["2026-06-12", "20260612"])
def test_a_closing_day_without_a_time_is_refused(runner, member, session, clock, written):
    clock.now = datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", f"closes_at={written}"])
    assert result.exit_code != 0 and "a date alone" in result.output


def _timers_fail_once(monkeypatch, error: Exception) -> list:
    """A timer's first run raises `error`, the runs after it go as usual; the timer ids run, in order."""
    import service.timers

    real, calls = service.timers._fire, []

    def fire(*args):
        calls.append(args[2])
        if len(calls) == 1:
            raise error
        return real(*args)

    monkeypatch.setattr(service.timers, "_fire", fire)
    return calls


def test_a_timer_whose_run_is_a_deadlocks_victim_is_run_again_not_dropped(runner, post_signed, member, session,
                                                                             clock, monkeypatch):
    """PostgreSQL rolls a deadlock's victim back whole: the timer is fired again, not set aside as failed."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    _start_vote(runner, "2026-11-23T18:00")
    calls = _timers_fail_once(monkeypatch, OperationalError("SELECT ...", {},
                                                            psycopg.errors.DeadlockDetected("deadlock detected")))
    clock.now = datetime(2026, 11, 23, 18, 1, tzinfo=UTC)
    assert fire_due_timers(session) == {"timers": 1}  # the vote's closing time, after its re-run
    assert len(calls) == 2 and calls[0] == calls[1]
    vote = session.scalar(select(Conversation).where(Conversation.flow_id == "vote"))
    assert (vote.active, vote.ended_reason) == (False, "no_answer")  # it closed, as the timer says


def test_after_an_outage_yesterdays_timers_fire_before_todays_schedule_replaces_them(app, session, community, clock):
    """The clock was down from just after Monday's check-in to Tuesday's. Its timer pass takes a batch
    a tick; Tuesday's check-in waits until every Monday timer has fired, so each member's Monday
    saves "no answer" and ends with its own timers rather than being cut off as interrupted."""
    from service.directory import add_member
    from workers.clock import tick

    for n in range(3):
        add_member(session, community, f"M{n}", f"07700 900{n + 300:03d}", welcome=False)
    session.commit()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    assert run_schedules(session) == {"scheduled_starts": 3}
    tasks = app.extensions["hearth_clock_tasks"]
    one_a_tick = [(lambda s, t=task: fire_due_timers(s, limit=1) if t is fire_due_timers else t(s)) for task in tasks]
    app.extensions["hearth_clock_tasks"] = one_a_tick
    clock.now = datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)
    starts = [tick(app).get("scheduled_starts", 0) for _ in range(12)]
    assert sum(starts) == 3 and starts[0] == 0  # Tuesday's waited behind Monday's timers
    session.expire_all()
    ends = session.scalars(select(Conversation.ended_reason).order_by(Conversation.id)).all()
    # Ended for want of an answer: the late-answer wait, set from the time its timer fired (now),
    # comes after Monday's expiry, which ends it then (its message is too late to send).
    assert ends[:3] == ["expired"] * 3
    moods = session.scalars(select(Result.value).where(Result.name == "mood")).all()
    assert moods == ["no_answer"] * 3


def test_a_clock_down_for_days_still_makes_todays_run_within_the_hour(session, community, member, clock):
    """The clock stopped on Monday morning and is back on Wednesday at 10:30: Monday's and Tuesday's
    check-ins are not replayed, but Wednesday's, half an hour late, goes as it would after a short
    outage."""
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    run_schedules(session)
    clock.now = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    _walk(session, clock, datetime(2026, 11, 25, 12, 0, tzinfo=UTC), step=timedelta(minutes=5))
    assert _checkins_local(session) == ["25 10:35 GMT"]


def test_a_timer_whose_run_meets_the_database_coming_back_is_fired_later_not_set_aside(runner, member, session,
                                                                                      clock, monkeypatch):
    """PostgreSQL restarting: the run's connection died, and the fresh one is refused while it starts
    up. That is no fault of the timer's: the vote still closes once the database is back, rather than
    stay open for good."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    _start_vote(runner, "2026-11-23T18:00")
    starting = psycopg.errors.CannotConnectNow("the database system is starting up")
    _timers_fail_once(monkeypatch, OperationalError("SELECT ...", {}, starting))
    clock.now = datetime(2026, 11, 23, 18, 1, tzinfo=UTC)
    with pytest.raises(OperationalError):
        fire_due_timers(session)  # the clock's tick logs it, and tries again next tick
    assert fire_due_timers(session) == {"timers": 1}
    vote = session.scalar(select(Conversation).where(Conversation.flow_id == "vote"))
    assert (vote.active, vote.ended_reason) == (False, "no_answer")


@pytest.mark.parametrize("votes_at, sent", [(datetime(2026, 11, 23, 20, 45, tzinfo=UTC), ["23 20:50 GMT"]),
                                             (datetime(2026, 11, 23, 21, 5, tzinfo=UTC), [])])
def test_a_busy_member_is_not_tried_again_in_quiet_hours(config, clock, tmp_path, redis, votes_at, sent):
    """A 20:30 check-in, quiet hours from 21:00: a member still voting at 20:30 gets it when they have
    voted, if that is before 21:00; once quiet hours begin they miss that day's, as when they stay busy."""
    from service.database import db
    from tests.integration.test_flows_in_service import _post

    clock.now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    app = _app_at(config, clock, tmp_path, "20:30")
    with app.app_context():
        run_schedules(db.session)
    clock.now = datetime(2026, 11, 23, 20, 25, tzinfo=UTC)
    started = app.test_cli_runner().invoke(args=[
        "flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
        "--param", "options=Yes,No", "--param", "closes_at=2026-11-25T18:00"])
    assert started.exit_code == 0, started.output
    with app.app_context():
        _walk(db.session, clock, votes_at, step=timedelta(minutes=5))
        assert _checkins_local(db.session) == []  # busy in the vote all the while
        _post(app, "1")
        _walk(db.session, clock, datetime(2026, 11, 23, 23, 0, tzinfo=UTC), step=timedelta(minutes=5))
        got = _checkins_local(db.session)
    app.extensions["hearth_db"].engine.dispose()
    assert got == sent
