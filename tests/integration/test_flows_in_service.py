"""Flows run by the service: keywords, answers, interrupts, timers, schedules, version pinning."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from service.database import db
from service.directory import add_member
from service.models import (
    Alert, AuditEvent, Conversation, Facilitator, InboundMessage, Member, OutboundMessage, Result, Schedule, Timer,
)
from service.schedules import run_schedules
from service.timers import fire_due_timers
from tests.support import sms_form, twiml_messages


def texts(response) -> list[str]:
    return twiml_messages(response.get_data(as_text=True))


def say(post_signed, body, phone="+447700900123"):
    response = post_signed("/twilio/sms", sms_form(body, from_number=phone))
    assert response.status_code == 200
    return texts(response)


def test_a_check_in_by_keyword_saves_the_answer_and_alerts_on_a_low_score(post_signed, member, session):
    [question] = say(post_signed, "checkin")
    assert "1-5" in question
    replies = say(post_signed, "2")
    assert any("team" in r for r in replies)
    result = session.scalar(select(Result).where(Result.name == "mood"))
    assert (result.value, result.flow_id, result.member_id) == ("2", "checkin", member.id)
    alert = session.scalar(select(Alert))
    assert alert.member_id == member.id and alert.severity in ("medium", "high")
    say(post_signed, "SKIP")
    session.expire_all()
    assert session.scalar(select(Conversation.active)) is False


def test_a_member_is_not_told_the_team_knows_when_the_community_has_nobody_to_tell(runner, post_signed, member,
                                                                                  session):
    """An alert in a community with no facilitator reaches nobody: the check-in says so honestly
    (ask a member of staff, and the crisis line), and says "I've let the team know" once one is added."""
    say(post_signed, "checkin")
    replies = say(post_signed, "1")
    assert not any("let the team know" in r for r in replies), replies
    assert any("Please tell a member of staff how you are" in r and "116 123" in r for r in replies), replies
    say(post_signed, "SKIP")
    runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo", "--phone", "07700 900100"])
    session.expire_all()  # the test's requests share one session; each webhook's own starts afresh
    say(post_signed, "checkin")
    assert any("let the team know" in r for r in say(post_signed, "1"))


def test_an_alert_goes_at_once_to_whoever_is_on_call(runner, post_signed, member, session, clock):
    """The member is told the team knows: the on-call facilitator gets it by SMS, on the crisis
    queue, at night too; with nobody on call, every facilitator does."""
    for name, phone, on_call in (("Jo", "07700 900100", True), ("Sam", "07700 900101", False)):
        runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", name, "--phone", phone,
                            *(["--on-call"] if on_call else [])])
    session.expire_all()  # the test's requests share one session; each webhook's own starts afresh
    clock.now = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)  # quiet hours
    say(post_signed, "checkin")
    assert any("let the team know" in r for r in say(post_signed, "1"))
    [sent] = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "alert")).all()
    assert (sent.to_number, sent.queue, sent.due_at) == ("+447700900100", "crisis", clock.now)
    assert sent.body == "Hearth, Oak House (high): Alex checked in at 1 of 5 (very low). Their number: 07700 900123"
    session.execute(update(Facilitator).values(on_call=False))
    session.commit()
    say(post_signed, "SKIP")
    say(post_signed, "checkin")
    say(post_signed, "2")
    told = session.scalars(select(OutboundMessage.to_number).where(OutboundMessage.kind == "alert")
                           .order_by(OutboundMessage.id)).all()
    assert told == ["+447700900100", "+447700900100", "+447700900101"]


def test_an_alert_in_a_community_without_facilitators_is_stored_and_logged(post_signed, member, session, caplog):
    say(post_signed, "checkin")
    with caplog.at_level("WARNING", logger="hearth.alerts"):
        say(post_signed, "1")
    assert session.scalar(select(func.count(Alert.id))) == 1
    assert session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "alert")) == 0
    assert "reaches nobody: the community has no facilitator" in caplog.text


def test_words_are_answers_too(post_signed, member, session):
    say(post_signed, "CHECKIN")
    say(post_signed, "great")
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "5"
    assert session.scalar(select(func.count(Alert.id))) == 0


@pytest.mark.parametrize("note", ["No point", "Nah suicidal"])
def test_a_worrying_note_that_starts_with_a_skip_word_reaches_the_team(post_signed, member, session, note):
    say(post_signed, "CHECKIN")
    say(post_signed, "3")
    replies = say(post_signed, note)
    assert any("Samaritans" in r for r in replies)
    assert session.scalars(select(Result.value).where(Result.name == "note")).all() == [note]
    assert session.scalars(select(Alert.severity)).all() == ["high"]


def test_words_of_crisis_outside_a_flow_reach_the_on_call_facilitator_and_signpost(runner, post_signed, member,
                                                                                      session):
    """Not "Sorry, I didn't understand that" and the menu: the team is told, and the member is
    given 999 and the crisis line at once."""
    runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo", "--phone", "07700 900100",
                        "--on-call"])
    [reply] = say(post_signed, "i feel like ending it all tonight")
    assert "Sorry" not in reply and "call 999 or go to A&E" in reply and "Samaritans" in reply
    assert session.scalars(select(Alert.severity)).all() == ["high"]
    [sent] = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "alert")).all()
    assert "Alex texted words that can mean they are at risk" in sent
    assert "Sorry, I didn't understand that" in say(post_signed, "hello")[0]  # the menu, as before
    # The community's own crisis contacts, every one of them.
    assert runner.invoke(args=["community", "set", "Oak House", "--crisis-contact", "Oak night line; call 01632 960999;"
                               " 24/7", "--crisis-contact", "Emergency; call 999"]).exit_code == 0
    [reply] = say(post_signed, "I want to kill myself")
    assert reply.endswith("If you need help now: Oak night line, call 01632 960999 (24/7). Emergency, call 999.")


def test_pause_interrupts_a_check_in_and_pauses_the_member(post_signed, member, session, clock):
    say(post_signed, "CHECKIN")
    [reply] = say(post_signed, "PAUSE 7")
    assert "paused" in reply.lower()
    session.expire_all()
    paused = session.get(Member, member.id)
    assert paused.status == "paused"
    assert paused.paused_until.date() == (clock.now + timedelta(days=7)).date()
    ended = session.scalar(select(Conversation).where(Conversation.flow_id == "checkin"))
    assert (ended.active, ended.ended_reason) == (False, "interrupted")
    say(post_signed, "BACK")
    session.expire_all()
    assert session.get(Member, member.id).status == "active"
    assert session.get(Member, member.id).paused_until is None


@pytest.mark.parametrize("text", ["Holiday was awful, feeling really low", "Break up with my partner last night"])
def test_free_text_that_starts_with_a_pause_word_pauses_nothing(post_signed, member, session, text):
    say(post_signed, text)
    session.expire_all()
    left = session.get(Member, member.id)
    assert (left.status, left.paused_until) == ("active", None)
    assert session.scalar(select(InboundMessage.handled_as)) == "flow:help"


def test_stop_in_the_middle_of_a_flow_ends_it(post_signed, member, session):
    say(post_signed, "CHECKIN")
    say(post_signed, "STOP")
    session.expire_all()
    conversation = session.scalar(select(Conversation))
    assert (conversation.active, conversation.ended_reason) == (False, "opted_out")
    assert session.scalar(select(func.count(Timer.id)).where(Timer.fired_at.is_(None))) == 0


def test_a_member_in_no_flow_gets_the_menu(post_signed, member, session):
    replies = say(post_signed, "what do I do")
    assert any("CHECKIN" in r for r in replies)
    # The menu started and ended in that one turn and left nothing behind: no conversation row,
    # while the inbound row names the flow that answered.
    assert session.scalar(select(func.count(Conversation.id))) == 0
    assert session.scalar(select(InboundMessage.handled_as)) == "flow:help"


def test_a_one_turn_flow_that_saves_a_result_keeps_its_conversation(post_signed, member, session):
    say(post_signed, "PAUSE 3")
    conversation = session.scalar(select(Conversation))
    assert (conversation.flow_id, conversation.active, conversation.ended_reason) == ("pause", False, "completed")
    saved = session.scalar(select(Result).where(Result.conversation_id == conversation.id))
    assert (saved.name, saved.value) == ("pause_days", "3")


def test_the_scheduled_check_in_reaches_every_member_who_should_get_it_once(app, session, community, clock,
                                                                             redis):
    alex = add_member(session, community, "Alex", "07700 900123", welcome=False)
    sam = add_member(session, community, "Sam", "07700 900124", welcome=False)
    gone = add_member(session, community, "Gone", "07700 900125", welcome=False)
    resting = add_member(session, community, "Resting", "07700 900126", welcome=False)
    gone.status = "opted_out"
    resting.status, resting.paused_until = "paused", clock.now + timedelta(days=3)
    session.commit()
    clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 0}
    due = session.scalar(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin"))
    assert due == datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # 10:00 in London in November
    clock.now = due + timedelta(seconds=1)
    assert run_schedules(session) == {"scheduled_starts": 2}
    assert run_schedules(session) == {"scheduled_starts": 0}, "a second tick starts nothing again"
    sent = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "checkin")).all()
    assert sorted(m.member_id for m in sent) == [alex.id, sam.id]
    # Each member's start ran in a savepoint; the run's sends were enqueued together, as one batch.
    assert [job.decode() for job in redis.lrange("rq:queue:bulk", 0, -1)] == [
        "send-" + "_".join(str(m.id) for m in sorted(sent, key=lambda m: m.id))]
    assert session.scalar(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin")) == \
        datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def test_reminder_then_no_answer_fire_from_the_clock(app, session, community, clock):
    add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)  # creates the schedule row, due at 10:00
    clock.now = datetime(2026, 11, 23, 10, 0, 1, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}
    assert fire_due_timers(session) == {"timers": 0}
    clock.advance(hours=3, minutes=1)
    assert fire_due_timers(session) == {"timers": 1}
    [reminder] = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "reminder")).all()
    assert reminder.body.startswith("Just checking in")
    clock.advance(hours=5)
    assert fire_due_timers(session) == {"timers": 1}
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "no_answer"
    assert session.scalar(select(Conversation.active)) is True  # a late answer is still taken, until 21:00
    clock.advance(hours=3)
    assert fire_due_timers(session) == {"timers": 1}
    session.expire_all()
    assert session.scalar(select(Conversation.active)) is False
    assert session.scalar(select(Conversation.ended_reason)) == "no_answer"


def _app_with_flows(config, clock, flows_dir):
    """An app of its own that also loads the flows in `flows_dir`, with Oak House and Alex in its database."""
    import dataclasses

    from service import create_app
    from service.database import db
    from service.directory import create_community

    app = create_app(dataclasses.replace(config, flows_dir=str(flows_dir)), overrides={"CLOCK": clock})
    with app.app_context():
        if db.session.scalar(select(Member.id)) is None:
            community = create_community(db.session, "Oak House", phone_number="+441632960000")
            add_member(db.session, community, "Alex", "07700 900123", welcome=False)
            db.session.commit()
    return app


def _post(app, body):
    """Text `body` to the app as Alex; the response."""
    from tests.conftest import AUTH_TOKEN
    from tests.support import sign

    form = sms_form(body)
    signature = sign("https://hearth.example.org/twilio/sms", form, AUTH_TOKEN)
    return app.test_client().post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


def test_a_running_conversation_keeps_the_flow_version_it_started_with(config, clock, tmp_path, redis):
    from flows.registry import BUNDLED_DIR

    custom = tmp_path / "flows"
    custom.mkdir()
    original = (BUNDLED_DIR / "checkin.yaml").read_text()
    (custom / "checkin.yaml").write_text(original)
    first = _app_with_flows(config, clock, custom)
    texts(_post(first, "CHECKIN"))
    first.extensions["hearth_db"].engine.dispose()

    # The file changes while Alex is mid-conversation: the answer prompt now reads differently.
    changed = original.replace("Anything you want the team to know?", "Is there anything else?")
    assert changed != original
    (custom / "checkin.yaml").write_text(changed.replace("version: 1", "version: 2", 1))
    second = _app_with_flows(config, clock, custom)
    replies = texts(_post(second, "4"))
    assert any("Anything you want the team to know?" in r for r in replies), replies
    second.extensions["hearth_db"].engine.dispose()


def test_a_hand_over_chain_longer_than_the_host_follows_is_cut_and_logged(config, clock, tmp_path, redis, caplog):
    for flow_id, target in zip("abcde", "bcdef"):
        step = f"  - id: go\n    type: start_flow\n    flow: {target}\n" if target != "f" else ""
        (tmp_path / f"{flow_id}.yaml").write_text(f"id: {flow_id}\nversion: 1\ntriggers: {{keywords: [{flow_id}]}}\n"
                                                  f"steps:\n  - id: hi\n    type: send\n    text: {flow_id}\n{step}")
    app = _app_with_flows(config, clock, tmp_path)
    with caplog.at_level("ERROR", logger="hearth.conversations"):
        replies = texts(_post(app, "a"))
    app.extensions["hearth_db"].engine.dispose()
    assert replies == ["a", "b", "c", "d"]
    assert "flow d: start_flow to e not followed: 3 hand-overs in one turn is the most" in caplog.text


def test_a_flow_with_the_longest_id_and_names_allowed_is_stored_whole(config, clock, tmp_path, redis, session):
    longest = "a" * 40  # what the flow schema allows (a longer one is refused when the file loads)
    (tmp_path / "survey.yaml").write_text(f"""
id: {longest}
version: 1
language: en
triggers:
  keywords: [survey]
steps:
  - {{id: {longest}, type: save, name: {longest}, value: "yes", category: {longest}}}
  - {{id: thanks, type: send, text: Thanks for taking the survey.}}
""")
    app = _app_with_flows(config, clock, tmp_path)
    answer = _post(app, "SURVEY")
    app.extensions["hearth_db"].engine.dispose()
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert twiml_messages(answer.get_data(as_text=True)) == ["Thanks for taking the survey."]
    assert session.scalar(select(InboundMessage.handled_as)) == f"flow:{longest}"
    assert session.execute(select(Result.flow_id, Result.name, Result.category)).one() == (longest,) * 3


def test_a_closing_time_without_an_offset_is_the_communitys_local_time(runner, member, session, clock):
    clock.now = datetime(2026, 6, 8, 9, 0, tzinfo=timezone.utc)  # June: London is on UTC+1
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", 'options=["Yes", "No"]', "--param", "closes_at=2026-06-12T18:00"])
    assert result.exit_code == 0, result.output
    [question] = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all()
    assert "by Fri 12 Jun 18:00" in question
    assert datetime(2026, 6, 12, 17, 0, tzinfo=timezone.utc) in session.scalars(select(Timer.due_at)).all()
    bad = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                              "--param", 'options=["Yes", "No"]', "--param", "closes_at=2026-02-30T18:00"])
    assert bad.exit_code == 2 and "'2026-02-30T18:00' is not a date and time" in bad.output


@pytest.mark.parametrize("params, complaint", [
    (["question=Film?"], "vote numbers the options in options for members to choose from: give two or more"),
    (["question=Film?", "options=Yes"], "give two or more"),
    (["question=Film?", "options=Yes,No", "closes_at=friday 5pm"],
     "closes_at='friday 5pm' is not a date and time: give a day and a time, like 2026-11-27T18:00"),
    (["qestion=Film?", "options=Yes,No"],
     "vote takes no parameter qestion (did you mean question?); it takes closes_at, options, question"),
    (["options=Yes,No"], "vote needs question: give --param question=..."),
    (["question=", "options=Yes,No"], "vote needs question"),
    (["question=null", "options=Yes,No"], "vote needs question"),
    (["question=   ", "options=Yes,No"], "vote needs question"),
])
def test_flows_start_refuses_what_would_send_members_nonsense(runner, member, session, params, complaint):
    args = ["flows", "start", "vote", "--community", "Oak House"] + [f"--param={p}" for p in params]
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and complaint in result.output, result.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0


@pytest.mark.parametrize("flow_id", ["pause", "help", "checkin"])
def test_flows_start_starts_only_a_flow_staff_start(runner, member, session, flow_id):
    """`flows start pause` would pause every member, and tell them so."""
    result = runner.invoke(args=["flows", "start", flow_id, "--community", "Oak House"])
    assert result.exit_code == 1 and f"{flow_id} is not a flow staff start" in result.output, result.output
    assert "staff can start: meeting_rsvp, vote" in result.output
    session.expire_all()
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    assert session.get(Member, member.id).status == "active"


@pytest.mark.parametrize("closes_at", ["2025-11-23T18:00", "2026-11-23T12:00:00+00:00"])
def test_flows_start_refuses_a_closing_time_that_is_not_in_the_future(runner, member, session, clock, closes_at):
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", f"closes_at={closes_at}"])
    assert result.exit_code == 2 and "which is not in the future" in result.output, result.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    assert session.scalar(select(func.count(Conversation.id))) == 0


@pytest.mark.parametrize("closes_at", ["9999-12-31T23:59-01:00", "0001-01-01T00:00+01:00"])
def test_flows_start_refuses_a_time_at_the_ends_of_the_calendar(runner, member, session, closes_at):
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", f"closes_at={closes_at}"])
    assert result.exit_code == 2 and "is out of range" in result.output, result.output
    assert session.scalar(select(func.count(Conversation.id))) == 0


def test_flows_start_names_a_member_it_was_given_who_got_nothing_and_exits_1(runner, post_signed, member, session):
    say(post_signed, "STOP")
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--phone", "07700 900123", "--in-quiet-hours"])
    assert result.exit_code == 1, result.output
    assert "Started vote for 0 member(s).\nNot started for: 07700 900123 (opted out)." in result.output
    say(post_signed, "START")
    again = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                "--param", "options=Yes,No", "--phone", "07700 900123", "--in-quiet-hours"])
    assert again.exit_code == 0 and "Not started" not in again.output, again.output


def test_a_member_who_takes_calls_is_left_out_of_votes_and_check_ins(runner, member, session, clock):
    """Calls are not built: asked by text they cannot get, they would count as never answering."""
    from service.directory import add_member

    add_member(session, member.community, "Land", "020 7946 0018", channel="voice")
    session.commit()
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--in-quiet-hours"])
    assert "Started vote for 1 member(s)." in result.output, result.output
    clock.now = datetime(2026, 11, 24, 10, 5, tzinfo=timezone.utc)
    run_schedules(session)
    assert sorted(session.scalars(select(Conversation.flow_id).where(Conversation.member_id != member.id))) == []
    assert session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.to_number == "+442079460018")) \
        == 0


@pytest.mark.parametrize("meeting, complaint", [
    ("Group", "meeting_rsvp reads meeting by its parts (place, starts_at, title): give it as JSON, like --param"
              ' \'meeting={"place": "...", "starts_at": "...", "title": "..."}\''),
    ('{"titel": "Group"}', "meeting_rsvp reads no titel (did you mean title?) of meeting; it reads place,"
                           " starts_at, title"),
])
def test_flows_start_refuses_a_meeting_not_in_the_shape_the_flow_reads(runner, member, session, meeting, complaint):
    """Members would get "Reminder: Community meeting. Can you come?": no title, no time."""
    result = runner.invoke(args=["flows", "start", "meeting_rsvp", "--community", "Oak House", "--param",
                                 f"meeting={meeting}", "--in-quiet-hours"])
    assert result.exit_code == 2 and complaint in result.output, result.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0


def test_flows_start_reads_options_written_with_commas_and_names_phones_that_are_not_members(runner, member,
                                                                                            session):
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes, No", "--phone", "07700 900123", "--phone", "07700 900999"])
    assert result.exit_code == 1, result.output  # a phone it was asked for got nothing
    assert "Started vote for 1 member(s).\nNot members of Oak House: 07700 900999." in result.output
    assert "Not started for" not in result.output
    [row] = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "flow")).all()
    assert "1 = Yes" in row.body and "2 = No" in row.body
    assert row.queue == "bulk"  # sent to a community: replies to members' texts do not wait behind it


@pytest.mark.parametrize("options", ['["Yes", null]', '["Yes", {"a": 1}]', '["Yes", ["No"]]', '["Yes", " "]',
                                     '["Yes", true]', '["Yes", NaN]', '["Yes", Infinity]'])
def test_flows_start_refuses_options_members_would_read_as_nonsense(runner, member, session, options):
    """Members would get "2 = None", "2 = {'a': 1}" or a blank option to vote for."""
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", f"options={options}", "--in-quiet-hours"])
    assert result.exit_code == 2 and "vote shows members each option in options as text" in result.output, \
        result.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0


def test_flows_start_takes_numbers_as_options(runner, member, session):
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Day?",
                                 "--param", "options=[12, 19.5]", "--in-quiet-hours"])
    assert result.exit_code == 0, result.output
    assert "1 = 12\n2 = 19.5" in session.scalar(select(OutboundMessage.body).where(OutboundMessage.kind == "flow"))


def test_a_facilitator_starts_a_vote_and_members_may_change_their_vote(runner, post_signed, member, session, clock):
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House",
                                 "--param", "question=Film night on Friday?", "--param", 'options=["Yes", "No"]',
                                 "--param", "closes_at=2026-11-27T18:00:00+00:00"])
    assert result.exit_code == 0, result.output
    assert "Started vote for 1 member(s)." in result.output
    [question] = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all()
    assert "Film night on Friday?" in question and "1 = Yes" in question
    say(post_signed, "1")
    say(post_signed, "2")
    assert session.scalars(select(Result.value).where(Result.name == "vote")).all() == ["No"]
    clock.now = datetime(2026, 11, 27, 18, 1, tzinfo=timezone.utc)
    fire_due_timers(session)
    session.expire_all()
    assert session.scalar(select(Conversation.active).where(Conversation.flow_id == "vote")) is False


def test_a_start_skips_a_member_mid_exchange_but_ends_an_idle_conversation(runner, post_signed, member, session, clock):
    say(post_signed, "CHECKIN")
    args = ["flows", "start", "meeting_rsvp", "--community", "Oak House",
            "--param", 'meeting={"title": "Community meeting", "starts_at": "2026-11-24T10:00:00+00:00"}']
    busy = runner.invoke(args=args)
    assert "0 member(s); 1 skipped" in busy.output
    clock.advance(hours=2)
    idle = runner.invoke(args=args)
    assert "Started meeting_rsvp for 1 member(s)." in idle.output
    body = session.scalar(select(OutboundMessage.body).where(OutboundMessage.kind == "flow"))
    assert "Tuesday 24 November at 10:00" in body
    checkin = session.scalar(select(Conversation).where(Conversation.flow_id == "checkin"))
    assert checkin.ended_reason == "interrupted"


def test_an_unknown_flow_is_named(runner, community):
    result = runner.invoke(args=["flows", "start", "nope", "--community", "Oak House"])
    assert result.exit_code == 1 and "there is no flow 'nope'" in result.output


def test_a_run_the_clock_missed_is_not_replayed_late(app, session, community, clock):
    add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc)  # the clock was down over 10:00
    assert run_schedules(session) == {"scheduled_starts": 0}
    assert session.scalar(select(Schedule.next_due_at)) == datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def test_one_conversation_in_progress_per_member_is_a_database_rule(session, member, app):
    from sqlalchemy.exc import IntegrityError

    from service.conversations import start_flow

    library = app.extensions["hearth_flows"]
    start_flow(session, library, member, member.community, library.get("checkin"), {}, "test")
    session.commit()
    conversation = session.scalar(select(Conversation))
    session.add(Conversation(member_id=member.id, flow_id="checkin", flow_digest=conversation.flow_digest,
                             active=True, started_at=conversation.started_at, updated_at=conversation.started_at))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_timers_fire_while_redis_is_down(config, clock, session, member, app):
    import dataclasses

    from service import create_app
    from service.conversations import start_flow
    from workers.clock import tick

    library = app.extensions["hearth_flows"]
    start_flow(session, library, member, member.community, library.get("checkin"), {}, "test")
    session.commit()
    clock.advance(hours=3, minutes=1)
    broken = create_app(dataclasses.replace(config, redis_url="redis://127.0.0.1:1/0"), overrides={"CLOCK": clock})
    done = tick(broken)
    broken.extensions["hearth_db"].engine.dispose()
    assert done.get("timers") == 1 and "swept" not in done


def test_a_control_character_in_a_reply_never_breaks_the_twiml(post_signed, member, session):
    # A name stored before names were checked; `say` parses every answer as XML.
    session.get(Member, member.id).name = "Al\x01ex"
    session.commit()
    say(post_signed, "checkin")
    say(post_signed, "4")
    replies = say(post_signed, "SKIP")
    assert any("Alex" in r for r in replies)
    assert all("\x01" not in body for body in session.scalars(select(OutboundMessage.body)))


def _walk(session, clock, until, step=timedelta(minutes=30)):
    """Run the clock's schedule and timer passes every `step` until `until`."""
    while clock.now < until:
        clock.now += step
        run_schedules(session)
        fire_due_timers(session)


def _check_ins(session, zone="Europe/London") -> list[str]:
    from zoneinfo import ZoneInfo

    sent = session.scalars(select(OutboundMessage.created_at).where(OutboundMessage.kind == "checkin")
                           .order_by(OutboundMessage.id))
    return [f"{moment.astimezone(ZoneInfo(zone)):%d %H:%M}" for moment in sent]


def test_a_new_timezone_after_the_days_check_in_sends_no_second_one_that_day(session, community, member, clock):
    from service.directory import update_community

    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    _walk(session, clock, datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc))
    assert _check_ins(session) == ["23 10:00"]  # 05:00 in New York
    update_community(session, community, timezone="America/New_York")  # the zone is put right
    session.commit()
    _walk(session, clock, datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc))
    assert _check_ins(session, "America/New_York") == ["23 05:00", "24 10:00"]


def _with_checkin_changed(config, clock, flows_dir, change, first_until):
    """Run the clock with the bundled check-in from 09:00 to `first_until`, then change its file
    with `change` (as version 2) and return an app that loads the changed file."""
    from flows.registry import BUNDLED_DIR
    from service.database import db

    original = (BUNDLED_DIR / "checkin.yaml").read_text()
    (flows_dir / "checkin.yaml").write_text(original)
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    first = _app_with_flows(config, clock, flows_dir)
    with first.app_context():
        _walk(db.session, clock, first_until)
    first.extensions["hearth_db"].engine.dispose()
    changed = change(original).replace("version: 1", "version: 2", 1)
    assert changed != original
    (flows_dir / "checkin.yaml").write_text(changed)
    return _app_with_flows(config, clock, flows_dir)


@pytest.mark.parametrize("new_time, sent", [
    ("14:00", ["23 10:00", "24 14:00", "25 14:00"]),  # later: today's 10:00 stood for today
    ("09:00", ["23 10:00", "24 09:00", "25 09:00"]),  # earlier: tomorrow's is not lost
])
def test_a_check_in_moved_after_todays_run_goes_at_the_new_time_from_the_next_day(config, clock, tmp_path, redis,
                                                                                 new_time, sent):
    from service.database import db

    app = _with_checkin_changed(config, clock, tmp_path, lambda text: text.replace('at: "10:00"', f'at: "{new_time}"'),
                                first_until=datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc))
    with app.app_context():
        _walk(db.session, clock, datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc))
        got = _check_ins(db.session)
    app.extensions["hearth_db"].engine.dispose()
    assert got == sent


def test_a_flow_no_longer_scheduled_is_not_started_by_its_old_schedule(config, clock, tmp_path, redis):
    from service.database import db

    app = _with_checkin_changed(config, clock, tmp_path,
                                lambda text: text.replace('  schedule: {every: day, at: "10:00"}\n', ""),
                                first_until=datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc))  # due at 10:00
    with app.app_context():
        _walk(db.session, clock, datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc))
        assert _check_ins(db.session) == []
        assert db.session.scalar(select(func.count(Schedule.id))) == 0
    app.extensions["hearth_db"].engine.dispose()


def test_a_reminder_the_clock_missed_by_hours_is_not_sent_late(session, community, member, clock):
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    _walk(session, clock, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc))  # the 10:00 check-in
    clock.now = datetime(2026, 11, 23, 19, 0, tzinfo=timezone.utc)  # the clock was down from 10:30
    assert fire_due_timers(session) == {"timers": 2}  # the reminder (set aside) and the no-answer
    session.expire_all()
    assert session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "reminder")).all() == []
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "no_answer"


def test_a_reminder_a_little_late_is_still_sent(session, community, member, clock):
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    _walk(session, clock, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc))
    clock.now = datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)  # half an hour after it was due
    fire_due_timers(session)
    [reminder] = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "reminder")).all()
    assert reminder.startswith("Just checking in")


def test_in_quiet_hours_what_hearth_sends_unasked_waits_for_the_morning(runner, post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 23, 22, 0, tzinfo=timezone.utc)  # 22:00 in London: quiet until 08:00
    added = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Bea",
                                "--phone", "07700 900124"])
    assert added.exit_code == 0, added.output
    welcome = session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "welcome"))
    assert welcome.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    # A member who texts is answered at once, in the TwiML, quiet hours or not.
    assert twiml_messages(post_signed("/twilio/sms", sms_form("HELP")).get_data(as_text=True))


def test_a_facilitator_starts_a_flow_in_quiet_hours_only_when_asked_to(runner, member, session, clock):
    """A flow's conversation runs from when it starts (its timers too): it is not held back, so
    it is not started at night by accident."""
    clock.now = datetime(2026, 11, 23, 22, 0, tzinfo=timezone.utc)
    vote = ["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
            "--param", "options=Yes,No"]
    refused = runner.invoke(args=vote)
    assert refused.exit_code == 1
    assert "it is quiet hours in Oak House until 08:00: start vote then, or now with --in-quiet-hours" in refused.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    assert runner.invoke(args=[*vote, "--in-quiet-hours"]).exit_code == 0
    assert session.scalar(select(OutboundMessage.due_at).where(OutboundMessage.kind == "flow")) == clock.now


def test_a_flow_started_in_quiet_hours_reaches_a_new_member_after_their_welcome(runner, session, community, clock):
    """Bea, added at 22:00, has her welcome held until 08:00. A vote started then with
    --in-quiet-hours went to her at once, before any word of what Hearth is or how to stop it; now
    her welcome goes first, in the same queue, and a send takes the vote only after it."""
    from service.sending import claimable

    clock.now = datetime(2026, 11, 23, 22, 0, tzinfo=timezone.utc)  # 22:00 in London: quiet until 08:00
    add_member(session, community, "Bea", "07700 900124")
    session.commit()
    started = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                  "--param", "options=Yes,No", "--in-quiet-hours"])
    assert started.exit_code == 0, started.output
    session.expire_all()
    rows = session.execute(select(OutboundMessage.kind, OutboundMessage.due_at, OutboundMessage.queue)
                           .order_by(OutboundMessage.id)).all()
    assert rows == [("welcome", clock.now, "bulk"), ("flow", clock.now, "bulk")]
    assert session.scalars(select(OutboundMessage.kind).where(claimable(clock.now))).all() == ["welcome"]


def test_a_reminder_that_falls_in_quiet_hours_is_set_aside(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 23, 19, 30, tzinfo=timezone.utc)  # 19:30: the reminder is due at 22:30
    post_signed("/twilio/sms", sms_form("CHECKIN"))
    clock.now = datetime(2026, 11, 23, 22, 31, tzinfo=timezone.utc)
    assert fire_due_timers(session) == {"timers": 1}
    assert session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all() == []


def test_quiet_hours_are_set_shown_and_turned_off(runner, member, session, clock):
    shown = runner.invoke(args=["community", "show", "Oak House"]).output
    assert "quiet hours 21:00-08:00" in shown and "in the quiet hours" not in shown
    assert "Note: no facilitator, so alerts reach nobody" in shown
    runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo", "--phone", "07700 900100"])
    assert "Alerts go to Jo (nobody is on call: all of them)." in runner.invoke(args=["community", "show",
                                                                                       "Oak House"]).output
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "09:30-10:30"]).exit_code == 0
    assert "Note: checkin is scheduled at 10:00, in the quiet hours; a schedule runs at its times all the same." in \
        runner.invoke(args=["community", "show", "Oak House"]).output
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "22:30-07:00"]).exit_code == 0
    assert "quiet hours 22:30-07:00" in runner.invoke(args=["community", "show", "Oak House"]).output
    for bad in ("22:30", "25:00-07:00", "07:00-07:00"):
        refused = runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", bad])
        assert refused.exit_code == 1 and "is not quiet hours (like 21:00-08:00, or off)" in refused.output, bad
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "off"]).exit_code == 0
    assert runner.invoke(args=["community", "create", "Ash", "--phone-number", "01632 960001",
                               "--quiet-hours", "off"]).exit_code == 0
    assert "quiet hours off" in runner.invoke(args=["community", "show", "Ash"]).output
    clock.now = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)
    runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Bea", "--phone", "07700 900124"])
    assert session.scalar(select(OutboundMessage.due_at).where(OutboundMessage.kind == "welcome")) == clock.now


@pytest.mark.parametrize("schedule, sent", [
    ('{every: weekday, at: "10:00"}', ["23 10:00", "24 10:00", "25 10:00", "26 10:00", "27 10:00", "30 10:00"]),
    ("{every: [mon, tue], at: \"10:00\"}", ["23 10:00", "24 10:00", "30 10:00"]),
    ('{every: weekend, at: "10:00"}', ["28 10:00", "29 10:00"]),
    ('{every: day, at: ["08:00", "12:00"]}', ["23 08:00", "23 12:00", "24 08:00", "24 12:00"]),
])
def test_every_kind_of_schedule_runs_at_each_of_its_times(config, clock, tmp_path, redis, schedule, sent):
    """Uneven spacing (Friday to Monday, 08:00 to 12:00) is no reason to skip a run."""
    from flows.registry import BUNDLED_DIR
    from service.database import db

    original = (BUNDLED_DIR / "checkin.yaml").read_text()
    (tmp_path / "checkin.yaml").write_text(original.replace('schedule: {every: day, at: "10:00"}',
                                                            f"schedule: {schedule}"))
    clock.now = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)  # a Monday
    app = _app_with_flows(config, clock, tmp_path)
    until = datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc) if "12:00" in schedule else \
        datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)
    with app.app_context():
        _walk(db.session, clock, until, step=timedelta(hours=1))
        got = _check_ins(db.session)
    app.extensions["hearth_db"].engine.dispose()
    assert got == sent


def _start_vote(runner, closes_at: str):
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param",
                                 "question=Film night on Friday?", "--param", 'options=["Yes", "No"]',
                                 "--param", f"closes_at={closes_at}"])
    assert result.exit_code == 0, result.output
    return result


VOTE_QUESTION = "Community vote: Film night on Friday?\n1 = Yes\n2 = No\nReply with a number by Fri 27 Nov 18:00."


def _conversations(session) -> list[tuple]:
    session.expire_all()
    return session.execute(select(Conversation.flow_id, Conversation.active, Conversation.suspended_at.is_not(None),
                                  Conversation.ended_reason).order_by(Conversation.id)).all()


def test_an_open_vote_waits_behind_the_morning_check_in_and_takes_the_vote_after_it(runner, post_signed, member,
                                                                                     session, clock):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))  # the 10:00 check-in starts
    assert _conversations(session) == [("vote", False, True, None), ("checkin", True, False, None)]
    say(post_signed, "4")  # the check-in's question is answered first...
    thanks, asked_again = say(post_signed, "nothing")  # the vote's question, last seen yesterday, again
    assert "Alex" in thanks and asked_again == VOTE_QUESTION
    assert _conversations(session)[1] == ("checkin", False, False, "completed")
    [thanks] = say(post_signed, "2")  # ...and then the vote takes its answer
    assert "your vote for No is in" in thanks
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "4"


def test_a_waiting_vote_closes_at_its_time_and_the_check_in_goes_on(runner, post_signed, member,
                                                                      session, clock):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-24T10:20:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))  # check-in 10:00, vote closes 10:20
    assert _conversations(session) == [("vote", False, False, "no_answer"), ("checkin", True, False, None)]
    say(post_signed, "3")
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "3"


def test_stop_ends_a_waiting_vote_with_the_check_in(runner, post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))
    say(post_signed, "STOP")
    assert _conversations(session) == [("vote", False, False, "opted_out"), ("checkin", False, False, "opted_out")]
    assert session.scalars(select(Timer.id).where(Timer.fired_at.is_(None))).all() == []


def test_a_member_checks_in_by_keyword_while_a_vote_is_open_and_votes_after(runner, post_signed, member, session,
                                                                             clock):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    [question] = say(post_signed, "CHECKIN")
    assert "1-5" in question
    say(post_signed, "4")
    assert say(post_signed, "nothing")[-1] == VOTE_QUESTION
    [thanks] = say(post_signed, "1")
    assert "your vote for Yes is in" in thanks
    assert _conversations(session) == [("vote", True, False, None), ("checkin", False, False, "completed")]
    # A vote already cast only listens: nothing is asked again when a check-in over it ends.
    say(post_signed, "CHECKIN")
    say(post_signed, "4")
    [thanks] = say(post_signed, "nothing")
    assert "Alex" in thanks


@pytest.mark.parametrize("texts, last", [
    (["CHECKIN", "1", "I want to die"], "call 999 or go to A&E"),  # an alert: the team is told
    (["CHECKIN", "1", "dim"], "Alex"),  # an alert earlier in the check-in the text ends
    (["CHECKIN", "I can't go on"], "call 999 or go to A&E"),  # words of crisis for a score
    (["CHECKIN", "PAUSE 7"], "Check-ins are paused for 7 days"),  # paused: nothing more, not a vote
])
def test_a_waiting_vote_does_not_ask_again_after_an_alert_or_a_pause(runner, post_signed, member, session, clock,
                                                                       texts, last):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    for text in texts[:-1]:
        say(post_signed, text)
    answer = say(post_signed, texts[-1])
    assert last in answer[-1] and not any("Community vote" in reply for reply in answer), answer


def test_a_vote_that_closed_while_it_waited_is_not_asked_again(runner, post_signed, member, session, clock):
    """The vote closed at 18:00; the member ends the check-in at 18:00:20, before the clock has
    closed the vote: it closes now, and is not asked."""
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-23T18:00:00+00:00")
    say(post_signed, "CHECKIN")
    say(post_signed, "4")
    clock.now = datetime(2026, 11, 23, 18, 0, 20, tzinfo=timezone.utc)
    answer = say(post_signed, "nothing")
    assert not any("Community vote" in reply for reply in answer), answer
    assert _conversations(session)[0] == ("vote", False, False, "no_answer")


def test_a_text_to_a_check_in_whose_time_was_up_is_not_taken_as_a_vote(runner, post_signed, member, session, clock):
    """The check-in (10:00) gave up at 18:00 while the clock was down; "4" at 18:10 was meant for
    it, not for the vote behind it, which asks its question again instead. The check-in does not
    wait for a late answer with a vote behind it: it gives way."""
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))  # the 10:00 check-in starts
    clock.now = datetime(2026, 11, 24, 18, 10, tzinfo=timezone.utc)
    answer = say(post_signed, "4")
    assert answer[-1] == VOTE_QUESTION, answer
    assert session.scalar(select(Result.value).where(Result.name == "vote")) is None
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "no_answer"
    [thanks] = say(post_signed, "2")
    assert "your vote for No is in" in thanks


def test_a_check_in_that_stops_asking_gives_way_to_the_vote_behind_it(runner, post_signed, member, session, clock):
    """With a vote waiting behind it, the check-in does not listen for a late answer: a "2" at
    19:00 goes to the vote, whose question the member was asked."""
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc))  # 10:00 check-in, 18:00 no answer
    session.expire_all()
    assert _conversations(session)[-1][0] == "checkin" and _conversations(session)[-1][1] is False
    [thanks] = say(post_signed, "2")
    assert "your vote for No is in" in thanks
    assert session.scalar(select(func.count(Alert.id))) == 0


def test_a_check_in_waiting_for_a_late_answer_does_not_keep_a_vote_from_the_member(runner, post_signed, member,
                                                                                   session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 18, 10, tzinfo=timezone.utc)
    fire_due_timers(session)  # 18:00: no answer; the check-in listens for a late one
    assert session.scalar(select(Conversation.active).where(Conversation.flow_id == "checkin")) is True
    result = _start_vote(runner, "2026-11-27T18:00:00+00:00")
    assert "Started vote for 1 member(s)." in result.output, result.output


def test_flows_start_names_the_members_it_skipped_as_busy_and_how_to_reach_them(runner, post_signed, member,
                                                                               session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")  # asked how they are: busy
    result = _start_vote(runner, "2026-11-27T18:00:00+00:00")
    assert "Started vote for 0 member(s); 1 skipped, busy in another conversation." in result.output
    assert ('Not started for: 07700 900123 (busy). It is not tried again for them: start it for them later with'
            ' --phone "07700 900123".') in result.output


def test_checkin_while_a_check_in_listens_for_a_late_answer_asks_again(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 18, 10, tzinfo=timezone.utc)
    fire_due_timers(session)  # 18:00: no answer; the check-in listens for a late one
    replies = say(post_signed, "CHECKIN")
    assert replies == ["How are you today? Reply 1-5 (1 = very low, 5 = great)"], replies


def test_a_no_answer_timer_fired_late_sends_no_expiry_text_at_night(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 19, 30, tzinfo=timezone.utc)  # the 18:00 no-answer timer, 90 min late
    fire_due_timers(session)
    for hour, minute in ((22, 31), (23, 59), (0, 1)):  # the late wait's end (22:30), the expiry (00:00)
        clock.now = datetime(2026, 11, 24 if hour else 25, hour, minute, tzinfo=timezone.utc)
        fire_due_timers(session)
    session.expire_all()
    assert session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all() == []
    assert _conversations(session)[-1][1:] == (False, False, "no_answer")


def test_a_score_with_everyday_words_near_the_crisis_list_is_a_score(post_signed, member, session):
    say(post_signed, "CHECKIN")
    say(post_signed, "4, I'm trying to give up smoking")
    assert session.scalar(select(Result.value).where(Result.name == "mood")) == "4"
    assert session.scalar(select(func.count(Alert.id))) == 0


def test_a_late_answer_and_its_note_send_no_expiry_text_at_night(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 18, 5, tzinfo=timezone.utc)
    fire_due_timers(session)
    clock.now = datetime(2026, 11, 24, 20, 30, tzinfo=timezone.utc)
    [note] = say(post_signed, "4")
    assert note.startswith("Anything you want the team to know?")
    for hour, minute in ((22, 1), (22, 31), (23, 59)):
        clock.now = datetime(2026, 11, 24, hour, minute, tzinfo=timezone.utc)
        fire_due_timers(session)
    session.expire_all()
    assert session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "flow")).all() == []
    assert _conversations(session)[-1][3] == "completed"


def test_a_late_check_in_answer_does_not_change_a_vote_already_cast_behind_it(runner, post_signed, member, session,
                                                                              clock):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    assert "your vote for Yes is in" in say(post_signed, "1")[0]
    _walk(session, clock, datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc))
    clock.now = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)
    say(post_signed, "2")
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "Yes"
    assert session.scalars(select(Result.value).where(Result.name == "mood").order_by(Result.id)).all()[-1] == "2"


def test_menu_during_the_late_wait_holds_the_check_in_as_any_other_text_does(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 18, 5, tzinfo=timezone.utc)
    fire_due_timers(session)
    assert say(post_signed, "MENU")[0].startswith("You can text:")
    say(post_signed, "2")
    session.expire_all()
    assert session.scalars(select(Result.value).where(Result.name == "mood").order_by(Result.id)).all()[-1] == "2"


def test_a_late_answer_that_is_no_answer_is_left_to_the_menu(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    say(post_signed, "CHECKIN")
    clock.now = datetime(2026, 11, 24, 18, 10, tzinfo=timezone.utc)
    assert "Sorry, I didn't understand that" in say(post_signed, "back in 2 hours")[0]
    # The check-in waited behind the menu, and still takes an answer.
    assert "Thanks for being honest" in say(post_signed, "2")[0]
    assert session.scalars(select(Result.value).where(Result.name == "mood").order_by(Result.id)).all()[-1] == "2"


@pytest.mark.parametrize("word", ["MENU", "BACK"])
def test_a_vote_waiting_behind_a_check_in_resumes_when_a_one_turn_flow_ends_the_check_in(runner, post_signed, member,
                                                                                          session, clock, word):
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00:00+00:00")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))
    answer = say(post_signed, word)  # ends the check-in; the menu (or BACK) runs to its end in the same turn
    assert answer[-1] == VOTE_QUESTION
    assert _conversations(session)[:2] == [("vote", True, False, None), ("checkin", False, False, "interrupted")]
    say(post_signed, "2")
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"


_HANDS_OVER = """id: {id}
version: {version}
triggers: {triggers}
steps:
  - id: q
    type: ask
    text: "A question from {id}?"
    answer: text
    result: a
    next: go
    unreadable: {{tries: 1, next: go}}
    no_answer: {{after: 1h, next: go}}
    voice: {{say: "A question"}}
  - id: go
    type: start_flow
    flow: {to}
"""
_SAYS_HI = "id: y\nversion: 1\ntriggers: {keywords: [yy]}\nsteps:\n  - {id: hi, type: send, text: \"y here\"}\n"


def _conversations_of(app) -> list[tuple]:
    with app.app_context():
        return _conversations(db.session)


def test_a_hand_over_not_followed_wakes_the_vote_waiting_behind(config, clock, tmp_path, redis):
    """x (started by its keyword over an open vote) hands over to y; y is removed before x's member
    answers, so x ends and its hand-over is not followed: the vote is in progress again."""
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc)
    (tmp_path / "x.yaml").write_text(_HANDS_OVER.format(id="x", version=1, triggers="{keywords: [xx]}", to="y"))
    (tmp_path / "y.yaml").write_text(_SAYS_HI)
    first = _app_with_flows(config, clock, tmp_path)
    _start_vote(first.test_cli_runner(), "2026-11-27T18:00:00+00:00")
    assert texts(_post(first, "xx")) == ["A question from x?"]
    first.extensions["hearth_db"].engine.dispose()
    (tmp_path / "y.yaml").unlink()
    (tmp_path / "x.yaml").write_text(_HANDS_OVER.format(id="x", version=2, triggers="{keywords: [xx]}", to="help"))
    second = _app_with_flows(config, clock, tmp_path)
    _post(second, "an answer")  # x goes on, on version 1, and ends handing over to y
    assert _conversations_of(second)[0] == ("vote", True, False, None)
    assert "your vote for No is in" in texts(_post(second, "2"))[0]
    second.extensions["hearth_db"].engine.dispose()


def test_a_waiting_flows_timer_does_not_hand_over_over_the_flow_in_progress(config, clock, tmp_path, redis):
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    (tmp_path / "fac.yaml").write_text(_HANDS_OVER.format(id="fac", version=1, triggers="{facilitator: {params: []}}",
                                                          to="help"))
    app = _app_with_flows(config, clock, tmp_path)
    assert app.test_cli_runner().invoke(args=["flows", "start", "fac", "--community", "Oak House"]).exit_code == 0
    assert "1-5" in texts(_post(app, "CHECKIN"))[0]  # fac waits behind the check-in
    clock.advance(minutes=61)
    with app.app_context():
        fire_due_timers(db.session)  # fac's no-answer: it ends, and its hand-over is not followed
    assert _conversations_of(app) == [("fac", False, False, "started_flow"), ("checkin", True, False, None)]
    _post(app, "4")
    with app.app_context():
        assert db.session.scalar(select(Result.value).where(Result.name == "mood")) == "4"
    app.extensions["hearth_db"].engine.dispose()


def test_a_closing_message_from_a_timer_is_a_flow_message_not_a_reminder(runner, post_signed, member, session, clock):
    """Only a reminder timer's nudge is set aside when late or in quiet hours; "Voting has closed" goes."""
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-23T14:00:00+00:00")
    say(post_signed, "1")
    _walk(session, clock, datetime(2026, 11, 23, 14, 30, tzinfo=timezone.utc))
    closed = session.scalar(select(OutboundMessage).where(OutboundMessage.body.like("Voting has closed%")))
    assert closed is not None and closed.kind == "flow"


def test_a_pause_that_runs_out_is_in_the_audit_log(post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    say(post_signed, "PAUSE 1")
    _walk(session, clock, datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc))  # the 24th's check-in ends it
    resumed = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.resumed")).all()
    assert [(event.actor, event.details.get("reason")) for event in resumed] == [("clock", "pause ended")]


def test_the_clock_ends_a_pause_when_it_runs_out_not_at_the_next_check_in(app, runner, post_signed, member, session,
                                                                             clock):
    from service.consent import end_pauses
    from workers.clock import tick

    clock.now = datetime(2026, 11, 23, 15, 0, tzinfo=timezone.utc)
    member_id = member.id
    say(post_signed, "PAUSE 1")
    session.expire_all()
    assert session.get(Member, member_id).status == "paused"
    assert end_pauses(session) == {"pauses_ended": 0}  # not yet run out
    clock.now = datetime(2026, 11, 24, 15, 1, tzinfo=timezone.utc)  # a day on: no check-in is due now
    assert tick(app)["pauses_ended"] == 1
    session.expire_all()
    assert session.get(Member, member_id).status == "active"
    assert "active" in runner.invoke(args=["members", "list", "--community", "Oak House"]).output
    resumed = session.scalars(select(AuditEvent).where(AuditEvent.action == "member.resumed")).all()
    assert [(event.actor, event.details.get("reason")) for event in resumed] == [("clock", "pause ended")]
    assert end_pauses(session) == {"pauses_ended": 0}  # once


def test_a_flow_version_stored_in_a_transaction_that_rolled_back_is_stored_again(app, session, community, clock):
    """The flow library must not take a version its session wrote, then lost, for stored: every
    later start would refer to a missing flow_versions row and fail."""
    from service.models import FlowVersion

    library = app.extensions["hearth_flows"]
    flow = library.get("checkin")
    library.remember(session, flow)
    library.remember(session, flow)  # a second start in the same transaction
    session.rollback()
    assert session.get(FlowVersion, flow.digest) is None
    add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}
    assert session.get(FlowVersion, flow.digest) is not None


def test_a_scheduled_run_started_again_does_not_start_a_member_twice(app, post_signed, session, community, clock):
    """A second clock, or a run cut off before it moved its schedule on, runs the same slot again:
    a member who has already answered (no conversation in progress now) is not asked again."""
    alex = add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    alex_id = alex.id
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    slot = session.scalar(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin"))
    clock.now = slot + timedelta(seconds=5)
    assert run_schedules(session) == {"scheduled_starts": 1}
    say(post_signed, "4")
    say(post_signed, "SKIP")
    session.expire_all()
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.active)) == 0
    session.execute(update(Schedule).where(Schedule.flow_id == "checkin").values(next_due_at=slot, last_run_at=None))
    session.commit()
    assert run_schedules(session) == {"scheduled_starts": 0}
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.member_id == alex_id)) == 1


_WAIT_LOOP = """id: nag
version: 1
triggers: {keywords: [nag]}
steps:
  - {id: nag, type: send, text: "Are you there?"}
  - {id: hold, type: wait, until: "%s", next: nag}
"""

_ASK_LOOP = """id: nag
version: 1
triggers: {keywords: [nag]}
steps:
  - id: q
    type: ask
    text: "Are you there?"
    answer: text
    no_answer: {after: 1d, at: "%s", next: q}
    unreadable: {next: done}
    voice: {say: "Are you there?"}
    next: done
  - {id: done, type: end}
"""


@pytest.mark.parametrize("source", [
    _WAIT_LOOP % "{{ params.args }}",           # a wait with no time: it ends at once
    _WAIT_LOOP % "2026-11-23T11:00:00+00:00",   # a wait until a time already past
    _ASK_LOOP % "2026-11-23T12:00:30+00:00",    # a question whose no-answer time comes, then is past
])
def test_a_flow_whose_wait_does_not_wait_cannot_text_a_member_over_and_over(config, clock, tmp_path, redis, source):
    """Such a loop passes validation (it has a wait on it); it must end as a loop, not send a text
    each time the clock looks, nor two hundred in one of its passes."""
    (tmp_path / "nag.yaml").write_text(source)
    from flows import load_flow_text
    assert load_flow_text(source, "nag.yaml")[0] is not None  # it validates
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    app = _app_with_flows(config, clock, tmp_path)
    first = texts(_post(app, "NAG"))
    with app.app_context():
        for _ in range(10):
            clock.advance(seconds=30)
            fire_due_timers(db.session)
        sent = db.session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind != "reply"))
    conversations = _conversations_of(app)
    app.extensions["hearth_db"].engine.dispose()
    assert sum("Are you there?" in text for text in first) + sent <= 1, (first, sent)
    assert [ended for _, active, _, ended in conversations if not active] in ([], ["loop"])
    assert not any(active for _, active, _, _ in conversations)


_LANGUAGE_FROM_ANSWER = """id: lang
version: 1
triggers: {keywords: [lang]}
steps:
  - id: which
    type: ask
    text: "Which language?"
    answer: text
    unreadable: {next: done}
    no_answer: {after: 1h, next: done}
    voice: {say: "Which language?"}
    next: set
  - {id: set, type: set_field, field: language, value: "{{ answers.which }}"}
  - {id: done, type: send, text: "Thanks."}
"""


@pytest.mark.parametrize("answer, language", [("Welsh please, if you have it", None), ("CY", "cy")])
def test_a_flow_setting_the_language_from_an_answer_keeps_only_a_language_code(config, clock, tmp_path, redis,
                                                                               answer, language):
    """A validated flow took "Welsh please, if you have it" for a language: 500 on PostgreSQL (the
    column is 16 wide), so Twilio retried and nothing was recorded."""
    (tmp_path / "lang.yaml").write_text(_LANGUAGE_FROM_ANSWER)
    from flows import load_flow_text
    assert load_flow_text(_LANGUAGE_FROM_ANSWER, "lang.yaml")[0] is not None  # it validates
    app = _app_with_flows(config, clock, tmp_path)
    assert texts(_post(app, "LANG")) == ["Which language?"]
    response = _post(app, answer)
    assert response.status_code == 200 and texts(response) == ["Thanks."]
    with app.app_context():
        assert db.session.scalar(select(Member.language)) == language
    app.extensions["hearth_db"].engine.dispose()


def test_an_open_vote_takes_only_a_whole_answer_and_leaves_other_texts_to_the_menu(runner, post_signed, member,
                                                                                   session, clock):
    """Once a member has voted the vote listens for a change until it closes (days). A text that is
    not an answer ("back in 2 hours") must not change the vote, nor get a vote's boilerplate: it
    is answered as with no vote open (the menu, with the Samaritans line), and the vote goes on."""
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00")
    assert "your vote for Yes is in" in say(post_signed, "1")[0]
    for text in ("Running late, back in 2 hours", "no idea", "Can someone call me? I'm not ok"):
        answer = say(post_signed, text)
        assert len(answer) == 1 and answer[0].startswith("Sorry, I didn't understand that.") and "Samaritans" in answer[0], answer
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "Yes"
    assert _conversations(session)[0][:2] == ("vote", True)  # still open
    assert "your vote for No is in" in say(post_signed, "2")[0]
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"


def test_a_vote_started_before_the_check_in_does_not_cost_members_that_days_check_in(runner, post_signed, member,
                                                                                      session, clock):
    """The vote waits behind the check-in; only a member the vote asked or answered in the last
    20 minutes is left out of the check-in (their next text would go to the wrong question)."""
    clock.now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 9, 15, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00")
    _walk(session, clock, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc), step=timedelta(minutes=5))
    checkins = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "checkin")).all()
    assert len(checkins) == 1 and "How are you today?" in checkins[0]
    assert [(c[0], c[1], c[2]) for c in _conversations(session)] == [("vote", False, True), ("checkin", True, False)]
    say(post_signed, "4")
    say(post_signed, "SKIP")
    assert _conversations(session)[0][:2] == ("vote", True)  # back once the check-in is done


def test_a_member_texting_in_a_vote_is_not_cut_off_by_the_check_in(runner, post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 9, 15, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00")
    clock.now = datetime(2026, 11, 23, 9, 40, tzinfo=timezone.utc)
    say(post_signed, "either")  # unclear: the vote asks again, and waits for their answer
    _walk(session, clock, datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), step=timedelta(minutes=5))
    assert session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "checkin")).all() == []
    clock.now = datetime(2026, 11, 23, 10, 2, tzinfo=timezone.utc)
    say(post_signed, "2")  # their answer to the vote, not a mood of 2
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"
    assert session.scalar(select(func.count(Alert.id))) == 0
    _walk(session, clock, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc), step=timedelta(minutes=5))
    checkin = session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "checkin"))
    assert checkin.created_at == datetime(2026, 11, 23, 10, 12, tzinfo=timezone.utc)  # the next try after it


def test_flows_start_writes_typography_plainly_and_says_what_it_costs(runner, member, session):
    """One curly apostrophe makes a text UCS-2: the vote was 3 SMS a member instead of 1."""
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param",
                                 "question=What’s on for Friday’s film night?", "--param",
                                 'options=["Paddington – the first", "Up"]'])
    assert result.exit_code == 0, result.output
    assert "Written plainly, so that no text costs more for it: options, question." in result.output
    body, segments, encoding = session.execute(select(OutboundMessage.body, OutboundMessage.segments,
                                                      OutboundMessage.encoding)).one()
    assert "What's on for Friday's film night?" in body and "Paddington - the first" in body
    assert (segments, encoding) == (1, "GSM-7")
    assert "Queued 1 text(s), 1 SMS segment(s) (GSM-7)." in result.output


_ANNOUNCE = """id: trip
version: 1
expiry: 1d
triggers: {facilitator: {params: [leaves_at]}}
steps:
  - {id: tell, type: send, text: "The trip leaves {{ params.leaves_at | local }}."}
"""


def test_a_time_a_flow_only_shows_may_come_after_its_conversations_end(config, clock, tmp_path, redis):
    """Only a time that sets one of the flow's timers must come before its conversations end."""
    (tmp_path / "trip.yaml").write_text(_ANNOUNCE)
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    app = _app_with_flows(config, clock, tmp_path)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["flows", "start", "trip", "--community", "Oak House",
                                                    "--param", "leaves_at=2026-11-28T09:00"])
        body = db.session.scalar(select(OutboundMessage.body))
    app.extensions["hearth_db"].engine.dispose()
    assert result.exit_code == 0, result.output
    assert body == "The trip leaves Sat 28 Nov at 09:00."


def test_a_vote_sent_just_before_the_check_in_keeps_the_members_answer(runner, post_signed, member, session, clock):
    """A vote at 09:55: the member's "2" at 10:01 is their vote, not a low mood (with an alert)."""
    clock.now = datetime(2026, 11, 23, 8, 30, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 9, 55, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00")
    _walk(session, clock, datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc), step=timedelta(minutes=5))
    clock.now = datetime(2026, 11, 23, 10, 1, tzinfo=timezone.utc)
    say(post_signed, "2")
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"
    assert session.scalar(select(func.count(Alert.id))) == 0
    _walk(session, clock, datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc), step=timedelta(minutes=5))
    assert len(session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "checkin")).all()) == 1


def test_a_text_the_vote_does_not_take_does_not_cost_the_check_in(runner, post_signed, member, session, clock):
    clock.now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    run_schedules(session)
    _start_vote(runner, "2026-11-27T18:00")
    assert "your vote for Yes is in" in say(post_signed, "1")[0]
    clock.now = datetime(2026, 11, 23, 9, 50, tzinfo=timezone.utc)
    say(post_signed, "Running late, back in 2 hours")  # the menu answers it; the vote is untouched
    _walk(session, clock, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc), step=timedelta(minutes=5))
    checkins = session.scalars(select(OutboundMessage.body).where(OutboundMessage.kind == "checkin")).all()
    assert len(checkins) == 1 and "How are you today?" in checkins[0]


def test_flows_start_says_when_a_closing_time_falls_in_quiet_hours(runner, member, session, clock):
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    result = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                 "--param", "options=Yes,No", "--param", "closes_at=2026-11-25T23:00"])
    assert result.exit_code == 0, result.output
    assert "Note: closes_at is 23:00 on Wed 25 Nov, in Oak House's quiet hours" in result.output
    evening = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                  "--param", "options=Yes,No", "--param", "closes_at=2026-11-25T18:00"])
    assert "quiet hours" not in evening.output


def _start_rsvp(runner):
    result = runner.invoke(args=["flows", "start", "meeting_rsvp", "--community", "Oak House", "--param",
                                 'meeting={"title": "Community meeting", "starts_at": "2026-11-25T10:00"}'])
    assert "Started meeting_rsvp for 1 member(s)." in result.output, result.output


def test_a_yes_repeated_after_a_finished_rsvp_does_not_change_a_vote_open_behind_it(runner, post_signed, member,
                                                                                   session, clock):
    """A member who voted No is sent a meeting RSVP, which the vote waits behind. Their YES finishes
    the RSVP and the vote is back, listening for a changed vote; a second YES (sent twice, or "yes"
    to "see you there") is the RSVP's answer again, not a vote for Yes. A vote changed another way
    still counts."""
    clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    _start_vote(runner, "2026-11-27T18:00")
    assert "your vote for No is in" in say(post_signed, "2")[0]
    _start_rsvp(runner)
    assert say(post_signed, "YES") == ["Great, see you there."]
    assert [c[0] for c in _conversations(session) if c[1]] == ["vote"]  # back, listening
    for repeat in ("Yes!", "yes"):
        [again] = say(post_signed, repeat)
        assert again.startswith("Sorry, I didn't understand that."), again  # as any text the vote does not take
    session.expire_all()
    assert session.scalar(select(Result.value).where(Result.name == "vote")) == "No"
    assert session.scalar(select(Result.value).where(Result.name == "rsvp")) == "yes"
    assert "your vote for Yes is in" in say(post_signed, "1")[0]
    assert "your vote for No is in" in say(post_signed, "No")[0]


def test_a_conversation_whose_flow_no_longer_loads_is_ended_not_counted_busy(app, session, community, clock, caplog):
    """Its stored version is refused by this code's checks, so it can never go on: the 10:00 check-in
    took it for an exchange and skipped the member all through its hour. Now it is ended, saying
    why, and the member gets the check-in."""
    from service.models import FlowVersion

    alex = add_member(session, community, "Alex", "07700 900123", welcome=False)
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    source = "id: old\nversion: 1\nsteps: []\n"  # no step: refused when it loads
    session.add(FlowVersion(digest="d" * 64, flow_id="old", version=1, source_path="old.yaml", source_text=source,
                            loaded_at=clock.now))
    session.flush()
    clock.now = datetime(2026, 11, 23, 9, 50, tzinfo=timezone.utc)
    session.add(Conversation(member_id=alex.id, flow_id="old", flow_digest="d" * 64, active=True, origin="reply:x",
                             state={"flow": {"id": "old"}, "step": "ask", "timers": {}}, started_at=clock.now,
                             updated_at=clock.now))
    session.commit()
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}
    assert [(c[0], c[1], c[3]) for c in _conversations(session)] == [("old", False, "flow_unavailable"),
                                                                      ("checkin", True, None)]
    assert "its flow no longer loads" in caplog.text


def test_a_text_to_a_conversation_whose_flow_no_longer_loads_is_answered(post_signed, member, session, clock):
    """The conversation is ended, and the text answered as with no flow in progress: before, it
    was ended and the member got no answer at all."""
    from service.models import FlowVersion

    session.add(FlowVersion(digest="d" * 64, flow_id="old", version=1, source_path="old.yaml",
                            source_text="id: old\nversion: 1\nsteps: []\n", loaded_at=clock.now))
    session.flush()
    session.add(Conversation(member_id=member.id, flow_id="old", flow_digest="d" * 64, active=True, origin="reply:x",
                             state={"flow": {"id": "old"}, "step": "ask", "timers": {}}, started_at=clock.now,
                             updated_at=clock.now))
    session.commit()
    [answer] = say(post_signed, "hello")
    assert answer.startswith("Sorry, I didn't understand that."), answer
    assert [(c[0], c[1], c[3]) for c in _conversations(session)] == [("old", False, "flow_unavailable")]


def _deadlocking_starts(session, community, monkeypatch, on: tuple[int, ...]) -> list[int]:
    """Two members, and scheduled starts whose calls numbered `on` (from 1) are a deadlock's victim;
    the ids of the members each call started, in order."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    import service.schedules

    for n in range(2):
        add_member(session, community, f"M{n}", f"07700 900{n + 300:03d}", welcome=False)
    session.commit()
    real, calls = service.schedules.start_flow, []

    def start_flow(session, library, member, *args, **kwargs):
        calls.append(member.id)
        if len(calls) in on:
            raise OperationalError("INSERT ...", {}, psycopg.errors.DeadlockDetected("deadlock detected"))
        return real(session, library, member, *args, **kwargs)

    monkeypatch.setattr(service.schedules, "start_flow", start_flow)
    return calls


def test_a_members_scheduled_start_that_meets_a_deadlock_is_run_again(app, session, community, clock, monkeypatch,
                                                                      caplog):
    """PostgreSQL rolls a deadlock's victim back: before, the member's start was logged as failed
    and they missed that day's check-in; now it is run again, with the member locked afresh."""
    calls = _deadlocking_starts(session, community, monkeypatch, on=(2,))  # the second member's first try
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 2}
    assert calls[1] == calls[2] and len(calls) == 3
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.flow_id == "checkin")) == 2
    assert "running again after a conflict: deadlock detected" in caplog.text


def test_a_scheduled_start_that_deadlocks_twice_is_run_by_the_next_tick(app, session, community, clock, monkeypatch):
    """Run again once, a start that is a deadlock's victim a second time fails the run: the slot is
    not moved on, so the clock's next tick runs it, skipping the members it started already."""
    from sqlalchemy.exc import OperationalError

    _deadlocking_starts(session, community, monkeypatch, on=(2, 3))
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    run_schedules(session)
    clock.now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=timezone.utc)
    with pytest.raises(OperationalError):
        run_schedules(session)
    session.rollback()
    clock.now = datetime(2026, 11, 23, 10, 0, 6, tzinfo=timezone.utc)
    assert run_schedules(session) == {"scheduled_starts": 1}
    assert session.scalar(select(func.count(Conversation.id)).where(Conversation.flow_id == "checkin")) == 2


def test_a_field_a_flow_cannot_set_from_an_answer_is_logged_without_the_members_words(config, clock, tmp_path, redis,
                                                                                        caplog):
    """A member's answer is theirs: the warning names the member and the field, not what they wrote."""
    (tmp_path / "prefs.yaml").write_text("""
id: prefs
version: 1
language: en
triggers: {keywords: [prefs]}
steps:
  - {id: lang, type: ask, text: "Which language would you like?", answer: text, result: lang, next: set_lang,
     unreadable: {next: thanks}, no_answer: {after: 1h, next: thanks}, voice: {say: "Please text it."}}
  - {id: set_lang, type: set_field, field: language, value: "{{ answers.lang }}", next: back}
  - {id: back, type: ask, text: "When should check-ins start again?", answer: text, result: back, next: set_back,
     unreadable: {next: thanks}, no_answer: {after: 1h, next: thanks}, voice: {say: "Please text it."}}
  - {id: set_back, type: set_field, field: paused_until, value: "{{ answers.back }}", next: thanks}
  - {id: thanks, type: send, text: Thanks.}
""")
    app = _app_with_flows(config, clock, tmp_path)
    with caplog.at_level("WARNING", logger="hearth.conversations"):
        texts(_post(app, "prefs"))
        texts(_post(app, "Welsh please, I feel awful today"))
        replies = texts(_post(app, "when my sister has gone home"))
    app.extensions["hearth_db"].engine.dispose()
    assert replies == ["Thanks."]
    warnings = [r.getMessage() for r in caplog.records if r.name == "hearth.conversations"]
    assert len(warnings) == 2, warnings
    assert "which is not a language code; ignored" in warnings[0] and "member 1" in warnings[0]
    assert "which is not a time; ignored" in warnings[1] and "member 1" in warnings[1]
    assert "awful" not in caplog.text and "sister" not in caplog.text
