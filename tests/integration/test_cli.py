"""The `hearth` commands against a real database."""

from __future__ import annotations

import pytest
from redis import RedisError
from sqlalchemy import func, select

from service.directory import add_member
from tests.conftest import DATABASE
from service.models import AuditEvent, Community, Facilitator, InboundMessage, Member, OutboundMessage

MENU = ("You can text: CHECKIN to check in now. PAUSE 7 to pause check-ins for 7 days. BACK to start them again."
        " HELP for contact details. STOP to stop all messages.")


def test_community_create_and_refusals(runner, session):
    result = runner.invoke(args=["community", "create", "Oak House", "--timezone", "Europe/London"])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Community.timezone)) == "Europe/London"
    again = runner.invoke(args=["community", "create", "oak house"])
    assert again.exit_code == 1 and "already a community" in again.output
    numbered = runner.invoke(args=["community", "create", "Ash", "--phone-number", "01632 960000"])
    assert numbered.exit_code == 0, numbered.output
    same = runner.invoke(args=["community", "create", "Elm", "--phone-number", "+441632960000"])
    assert same.exit_code == 1 and "+441632960000 is already the number of 'Ash'" in same.output
    bad = runner.invoke(args=["community", "create", "Elm", "--timezone", "Mars/Olympus"])
    assert bad.exit_code == 1 and "is not a timezone" in bad.output and "Traceback" not in bad.output
    # A folder of zones, a name too long for a file, and the server's own zone (which differs from
    # host to host) are not timezones either.
    for zone in ("US", "Europe", "a" * 300, "localtime", "Factory", "../../etc/passwd"):
        bad = runner.invoke(args=["community", "create", "Elm", "--timezone", zone])
        assert bad.exit_code == 1 and "is not a timezone" in bad.output, (zone, bad.output)


def test_a_new_community_is_told_its_help_text_names_no_one_to_contact(runner, session):
    created = runner.invoke(args=["community", "create", "Oak House"])
    assert "HELP is answered with a help text that names no one at Oak House to contact" in created.output


def test_a_community_is_found_by_its_name_in_any_case_beyond_ascii(runner, session):
    assert runner.invoke(args=["community", "create", "Élan House"]).exit_code == 0
    added = runner.invoke(args=["member", "add", "--community", "élan house", "--name", "Alex", "--phone",
                                "07700 900123", "--no-welcome"])
    assert added.exit_code == 0, added.output
    again = runner.invoke(args=["community", "create", "ÉLAN HOUSE"])
    assert again.exit_code == 1 and "already a community called 'Élan House'" in again.output, again.output
    assert session.scalar(select(func.count()).select_from(Community)) == 1


def test_a_community_name_differing_only_in_its_spaces_is_the_same_community(runner, session):
    assert runner.invoke(args=["community", "create", "Oak House"]).exit_code == 0
    for name in (" oak  house ", "Oak\u00a0House"):
        again = runner.invoke(args=["community", "create", name, "--phone-number", "01632 960001"])
        assert again.exit_code == 1 and "already a community called 'Oak House'" in again.output, again.output
    assert session.scalars(select(Community.name)).all() == ["Oak House"]
    spaced = runner.invoke(args=["community", "create", "Elm  Court", "--phone-number", "01632 960001"])
    assert spaced.exit_code == 0, spaced.output
    assert session.scalar(select(Community.name).where(Community.id != 1)) == "Elm Court"
    shown = runner.invoke(args=["community", "show", "elm   court"])
    assert shown.exit_code == 0 and shown.output.startswith("Elm Court:"), shown.output


def test_local_numbers_are_read_in_the_timezones_country_unless_told(runner, session):
    def create(name, *args):
        result = runner.invoke(args=["community", "create", name, *args])
        assert result.exit_code == 0, result.output
        return result.output, session.scalar(select(Community.region).where(Community.name == name))

    output, region = create("Oak", "--timezone", "Europe/London")
    assert output.startswith("Created community Oak (Europe/London; local numbers read as in GB).\n") and region == "GB"
    assert create("Elm", "--timezone", "Europe/Dublin", "--phone-number", "+353 1 555 0101")[1] == "IE"
    # No one country: the UK, where Hearth starts.
    assert create("Ash", "--timezone", "Etc/UTC", "--phone-number", "01632 960501")[1] == "GB"
    assert create("Yew", "--timezone", "Europe/Dublin", "--region", "gb", "--phone-number", "01632 960502")[1] == "GB"
    dublin = runner.invoke(args=["member", "add", "--community", "Elm", "--name", "A", "--phone", "085 123 4567",
                                 "--no-welcome"])
    assert dublin.exit_code == 0, dublin.output
    assert session.scalar(select(Member.phone).where(Member.name == "A")) == "+353851234567"
    bad = runner.invoke(args=["community", "create", "Fir", "--region", "XX"])
    assert bad.exit_code == 1 and "'XX' is not a region phone numbers can be read in" in bad.output
    # Set later: numbers given from then on are read in it, and the community's own number with it.
    moved = runner.invoke(args=["community", "set", "Ash", "--region", "ie", "--phone-number", "01 234 5678"])
    assert moved.exit_code == 0, moved.output
    assert session.execute(select(Community.region, Community.phone_number).where(Community.name == "Ash")).one() \
        == ("IE", "+35312345678")


def test_community_set_changes_only_what_it_is_given_and_audits_it(runner, community, session, post_signed):
    result = runner.invoke(args=["community", "set", "oak house", "--help-text", "{community}: call 01632 960111.",
                                 "--unknown-reply", "{community} does not know this number.", "--language", "en"])
    assert result.exit_code == 0, result.output
    assert "Changed help_text, unknown_reply of Oak House." in result.output  # the language was en already
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "community.updated"))
    assert event.details == {"help_text": "{community}: call 01632 960111.",
                             "unknown_reply": "{community} does not know this number."}
    # What members and strangers get now, {community} filled in.
    from tests.support import sms_form, twiml_messages
    runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "A", "--phone", "07700900123",
                        "--no-welcome"])
    help_answer = post_signed("/twilio/sms", sms_form("HELP")).get_data(as_text=True)
    assert twiml_messages(help_answer) == ["Oak House: call 01632 960111."]
    stranger = post_signed("/twilio/sms", sms_form("hi", from_number="+447700900999")).get_data(as_text=True)
    assert twiml_messages(stranger) == ["Oak House does not know this number."]
    shown = runner.invoke(args=["community", "show", "Oak House"])
    assert "help text (1 part, GSM-7):\n  Oak House: call 01632 960111." in shown.output
    assert "reply to unknown numbers (1 part, GSM-7):\n  Oak House does not know this number." in shown.output
    # '' means strangers get no answer at all.
    assert runner.invoke(args=["community", "set", "Oak House", "--unknown-reply", ""]).exit_code == 0
    stranger = post_signed("/twilio/sms", sms_form("hi", from_number="+447700900999")).get_data(as_text=True)
    assert twiml_messages(stranger) == []
    assert "reply to unknown numbers: (no answer)" in runner.invoke(args=["community", "show", "Oak House"]).output


def test_a_new_timezone_moves_the_scheduled_check_in_to_its_local_time(runner, community, session, app):
    from service.models import Schedule
    from service.schedules import run_schedules

    run_schedules(session)
    [london] = session.scalars(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin"))
    result = runner.invoke(args=["community", "set", "Oak House", "--timezone", "America/New_York"])
    assert result.exit_code == 0, result.output
    run_schedules(session)
    [new_york] = session.scalars(select(Schedule.next_due_at).where(Schedule.flow_id == "checkin"))
    # The same local time of day, five hours later in UTC (neither zone is on summer time in November).
    assert (new_york - london).total_seconds() % 86400 == 5 * 3600


@pytest.mark.parametrize("args, complaint", [
    (["--welcome-text", "Hi from {community}"], "must tell members how to use STOP and HELP"),
    (["--opt-out-reply", "Bye"], "must tell members how to use START"),
    (["--opt-out-reply", "  "], "the opt-out reply cannot be empty"),
    (["--help-text", "x" * 460], "at most 459 characters"),
    (["--help-text", "a\x07b"], "must not contain control characters"),
    (["--help-text", "{communty} staff on 01632 960111"],
     "the help text says {communty}: the names it can hold are {community} and {crisis}"),
    (["--crisis-contact", "Samaritans 116 123"], 'must be written "NAME; HOW; WHEN"'),
    (["--crisis-contact", "Samaritans; ; free"], "crisis contact 1 needs its how"),
    (["--crisis-contact", "Samaritans; call 116 123", "--crisis-contact", "; call 111"],
     "crisis contact 2 needs its name"),
    (["--crisis-contact", "Samaritans; call 116 123\x07"], "must not contain control characters"),
    (["--crisis-contact", "A; b"] * 7, "at most 6 crisis contacts"),
    (["--crisis-contact", "{community} night line; call 01632 960999"], "must not contain control characters, ';',"),
    (["--help-text", "x" * 440 + " {crisis}"], "the help text would be 478 characters with the crisis line in it"),
    (["--timezone", "Mars/Olympus"], "is not a timezone"),
    (["--phone-number", ""], "it is empty"),
    (["--phone-number", "+441632960001"], "is already the number of 'Elm House'"),
    ([], "say what to change"),
])
def test_community_set_refuses_with_a_reason_and_changes_nothing(runner, community, session, args, complaint):
    runner.invoke(args=["community", "create", "Elm House", "--phone-number", "+441632960001"])
    result = runner.invoke(args=["community", "set", "Oak House", *args])
    assert result.exit_code != 0 and complaint in result.output and "Traceback" not in result.output
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "community.updated")) == 0


def test_a_community_s_own_crisis_line_is_the_one_its_texts_and_flows_give(runner, community, session, post_signed):
    """Safety content is the community's: its crisis contacts, not a line written into the texts
    and flows, are what the help text, the welcome, strangers and the menu signpost."""
    from tests.support import sms_form, twiml_messages

    result = runner.invoke(args=["community", "set", "Oak House", "--crisis-contact",
                                 "Oak House night line; call 01632 960999; 24/7",
                                 "--crisis-contact", "Samaritans; call 116 123; free, 24/7"])
    assert result.exit_code == 0 and "Changed crisis_contacts of Oak House." in result.output, result.output
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "community.updated"))
    assert event.details["crisis_contacts"][0] == {"name": "Oak House night line", "how": "call 01632 960999",
                                                   "when": "24/7"}
    line = "Oak House night line, call 01632 960999 (24/7)"
    added = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "A", "--phone", "07700900123"])
    assert added.exit_code == 0, added.output
    welcome = session.scalar(select(OutboundMessage.body).where(OutboundMessage.kind == "welcome"))
    assert welcome.endswith(f"Reply HELP for help or STOP to stop. {line}.")
    [help_text] = twiml_messages(post_signed("/twilio/sms", sms_form("HELP")).get_data(as_text=True))
    assert help_text.endswith(f"Need to talk now? {line}.") and "Samaritans" not in help_text
    menu = twiml_messages(post_signed("/twilio/sms", sms_form("hello")).get_data(as_text=True))
    assert menu == [f"Sorry, I didn't understand that. {MENU} If you need to talk to someone now: {line}."], menu
    [stranger] = twiml_messages(post_signed("/twilio/sms", sms_form("hi", from_number="+447700900999"))
                                .get_data(as_text=True))
    assert stranger == f"Sorry, this service does not know your number. If you need support: {line}."
    shown = runner.invoke(args=["community", "show", "Oak House"]).output
    assert f"Crisis contacts (the first is {{crisis}} in texts):\n  {line}\n  Samaritans, call 116 123 (free, 24/7)\n" \
        in shown


def test_a_crisis_line_in_a_check_in_answer_is_the_community_s(runner, community, session, post_signed):
    from tests.support import sms_form, twiml_messages

    runner.invoke(args=["community", "set", "Oak House", "--crisis-contact", "Crisis team; call 01632 960999"])
    runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "A", "--phone", "07700900123",
                        "--no-welcome"])
    post_signed("/twilio/sms", sms_form("CHECKIN"))
    answer = twiml_messages(post_signed("/twilio/sms", sms_form("1")).get_data(as_text=True))
    assert answer[0].endswith("If you need to talk now: Crisis team, call 01632 960999."), answer


def test_a_community_outside_the_uk_is_told_its_crisis_contacts_are_the_uk_s(runner):
    result = runner.invoke(args=["community", "create", "Maple", "--timezone", "America/Toronto"])
    assert result.exit_code == 0 and "its crisis contacts are the UK's (Samaritans first)" in result.output
    oak = runner.invoke(args=["community", "create", "Oak", "--phone-number", "01632 960501"])
    assert oak.exit_code == 0 and "crisis contacts" not in oak.output
    moved = runner.invoke(args=["community", "set", "Oak", "--region", "IE"])
    assert moved.exit_code == 0 and "its crisis contacts are the UK's" in moved.output
    runner.invoke(args=["community", "create", "Birch", "--phone-number", "01632 960502"])
    moved = runner.invoke(args=["community", "set", "Birch", "--timezone", "America/Chicago"])
    assert moved.exit_code == 0, moved.output
    assert "Note: local numbers are still read as in GB; if its members' are from US, set --region US too." \
        in moved.output and "its crisis contacts are the UK's" in moved.output
    assert "its crisis contacts are the UK's" in runner.invoke(args=["community", "show", "Maple"]).output


def test_a_crisis_line_too_long_for_a_text_that_says_it_is_refused(runner, community, session):
    long_help = "x" * 412 + " {crisis}."  # 449 characters with the UK's line in it
    assert runner.invoke(args=["community", "set", "Oak House", "--help-text", long_help]).exit_code == 0
    result = runner.invoke(args=["community", "set", "Oak House", "--crisis-contact",
                                 "Oak House night line; call 01632 960999, then press 2"])
    assert result.exit_code == 1 and ("the help text would be 467 characters with the crisis line in it (Oak House"
                                      " night line, call 01632 960999, then press 2): at most 459") in result.output
    session.expire_all()
    assert session.scalar(select(Community.crisis_contacts))[0]["name"] == "Samaritans"


def test_new_crisis_contacts_name_the_texts_they_do_not_reach_and_what_they_cost(runner, community, session):
    """A help text that writes a number itself keeps it; a line outside GSM-7 costs more SMS."""
    runner.invoke(args=["community", "set", "Oak House", "--help-text", "Staff on 01632 960111. Samaritans 116 123."])
    result = runner.invoke(args=["community", "set", "Oak House", "--crisis-contact",
                                 "Llinell Gymorth Cymru; ffoniwch 0800 132 737 \u2013 Iâith; am ddim"])
    assert result.exit_code == 0, result.output
    assert ("Note: the help text does not say {crisis}, so it still gives whatever line it names itself:"
            " 'Staff on 01632 960111. Samaritans 116 123.'") in result.output
    assert "Note: with the crisis line in it the welcome text is 3 SMS parts (UCS-2: \u2013, \u00e2)." in result.output
    # Typography alone is written plainly, so it does not make every text UCS-2.
    runner.invoke(args=["community", "set", "Oak House", "--crisis-contact", "Crisis team \u2013 \u2018Oak\u2019;"
                        " call 01632 960999"])
    session.expire_all()
    assert session.scalar(select(Community.crisis_contacts)) == [{"name": "Crisis team - 'Oak'",
                                                                   "how": "call 01632 960999"}]


@pytest.mark.parametrize("text, note", [
    ("Staff are on 01632 960111 from 9 till 5. " * 4, "Note: the help text is 2 SMS parts (GSM-7)."),
    ("Ring \u201cthe office\u201d on 01632 960111 \u263a", "Note: the help text is 1 SMS part (UCS-2: \u201c, \u201d,"
                                                           " \u263a)."),
])
def test_community_set_says_what_a_new_text_without_the_crisis_line_costs(runner, community, text, note):
    """A help text past one SMS, or with one character that makes it UCS-2, costs every member who asks more."""
    result = runner.invoke(args=["community", "set", "Oak House", "--help-text", text])
    assert result.exit_code == 0 and note in result.output, result.output
    plain = runner.invoke(args=["community", "set", "Oak House", "--help-text", "Staff: 01632 960111."])
    assert "Note" not in plain.output, plain.output


def import_members(runner, tmp_path, text: str, community: str = "Oak House"):
    """Run `hearth members import` on a CSV holding `text`."""
    csv = tmp_path / "members.csv"
    csv.write_text(text, encoding="utf-8")
    return runner.invoke(args=["members", "import", str(csv), "--community", community])


def test_member_add_queues_the_welcome_unless_told_not_to(runner, session, community, redis):
    result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Alex",
                                 "--phone", "07700 900123"])
    assert result.exit_code == 0, result.output
    welcome = session.scalar(select(OutboundMessage))
    assert welcome.kind == "welcome" and welcome.to_number == "+447700900123"
    assert "STOP" in welcome.body and "HELP" in welcome.body and "Oak House" in welcome.body
    assert redis.llen("rq:queue:replies") == 1
    quiet = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Sam",
                                "--phone", "+44 7700 900124", "--no-welcome"])
    assert quiet.exit_code == 0
    assert session.scalar(select(func.count(OutboundMessage.id))) == 1


def test_member_add_refuses_the_same_phone_in_another_format(runner, community):
    runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "A", "--phone", "07700900123"])
    dup = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "B", "--phone", "447700900123"])
    assert dup.exit_code == 1 and "already a member" in dup.output


def test_member_add_refuses_an_impossible_number_with_a_reason(runner, community, session):
    result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "A", "--phone", "hello"])
    assert result.exit_code == 1 and "not a phone number" in result.output
    assert session.scalar(select(func.count(Member.id))) == 0


@pytest.mark.parametrize("name", ["Alex\u202e", "Al\u2066ex", "Alex\u2028Jo", "Alex\u2029Jo"])
def test_member_add_refuses_a_name_that_would_turn_an_alert_around(runner, community, session, name):
    result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", name, "--phone", "07700900123"])
    assert result.exit_code == 1 and "must not contain characters that reorder or break the text" in result.output
    assert session.scalar(select(func.count(Member.id))) == 0


def test_member_add_keeps_the_joiners_names_and_emoji_need(runner, community, session):
    for phone, name in (("07700900123", "Mehr\u200cnaz"), ("07700900124", "Sam \U0001f469\u200d\U0001f33e")):
        result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", name, "--phone", phone,
                                     "--no-welcome"])
        assert result.exit_code == 0, result.output
    assert session.scalar(select(func.count(Member.id))) == 2


def test_member_add_refuses_a_landline_for_texts_and_calls_it_for_voice(runner, community, session):
    add = ["member", "add", "--community", "Oak House", "--name", "A", "--phone", "020 7946 0018"]
    refused = runner.invoke(args=add)
    assert refused.exit_code == 1 and "a landline, which cannot receive texts" in refused.output
    assert session.scalar(select(func.count(Member.id))) == 0
    voice = runner.invoke(args=[*add, "--channel", "voice"])
    assert voice.exit_code == 0
    assert session.scalar(select(Member.channel)) == "voice"
    assert voice.output.startswith("Added A (+442079460018) to Oak House.\n"), voice.output
    assert ("Note: the member takes calls, which Hearth does not place yet: A is sent no welcome, check-in or vote"
            " until it does, and is left out of them (answers to their own texts still go).") in voice.output
    assert session.scalar(select(func.count(OutboundMessage.id))) == 0
    premium = runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "F",
                                  "--phone", "0909 879 0123"])
    assert premium.exit_code == 1 and "a premium-rate number" in premium.output


def test_a_language_no_flow_speaks_is_added_with_a_note_and_codes_take_their_usual_form(runner, community,
                                                                                        session, tmp_path):
    added = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Zofia",
                                "--phone", "07700 900301", "--language", "PL"])
    assert added.exit_code == 0, added.output
    assert "Note: no flow speaks 'pl' (they speak cy, en)" in added.output
    result = import_members(runner, tmp_path, "name,phone,language\nAna,07700 900302,CY\nBo,07700 900303,fr\n"
                                              "Cy,07700 900304,en_GB\n")
    assert result.exit_code == 0, result.output
    assert "Imported 3 of 3 rows" in result.output
    assert "line 3: added; no flow speaks 'fr'" in result.output
    assert "line 2" not in result.output and "line 4" not in result.output
    languages = dict(session.execute(select(Member.name, Member.language)).all())
    assert languages == {"Zofia": "pl", "Ana": "cy", "Bo": "fr", "Cy": "en-GB"}


def test_a_code_that_names_no_language_is_refused_everywhere_a_language_is_given(runner, community, session,
                                                                                  tmp_path):
    added = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Zofia",
                                "--phone", "07700 900301", "--language", "xx"])
    assert added.exit_code == 1 and "'xx' is not a language code (like en or cy)" in added.output
    result = import_members(runner, tmp_path, "name,phone,language\nAna,07700 900302,zz\nBo,07700 900303,cy\n")
    assert "line 2: refused: 'zz' is not a language code" in result.output and "Imported 1 of 2 rows" in result.output
    created = runner.invoke(args=["community", "create", "Elm House", "--language", "qq"])
    assert created.exit_code == 1 and "'qq' is not a language code" in created.output
    assert session.scalar(select(func.count(Member.id))) == 1


def test_import_reports_each_refused_row_and_keeps_the_rest(runner, community, session, tmp_path):
    result = import_members(runner, tmp_path, "Name,Phone,Language\nAna,07700 900201,en\nBo,12,\nCy,+447700900201,\n"
                                              ",07700900202,\nDi,447700900203,cy\nEd,07700900204,en\n")
    assert result.exit_code == 1, result.output  # rows were refused
    assert "Imported 3 of 6 rows" in result.output
    assert "line 3: refused:" in result.output and "'12'" in result.output
    assert "line 4: refused: the same number as line 2" in result.output
    assert "line 5: refused: a member needs a name" in result.output
    assert session.scalar(select(func.count(Member.id))) == 3
    assert session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "welcome")) == 3
    assert session.scalar(select(Member.language).where(Member.name == "Di")) == "cy"


def test_a_number_that_texted_stop_joins_another_community_texted_from_that_number_opted_out(runner, member, session,
                                                                                             post_signed, tmp_path):
    """Oak House texts from the configured sender; so does Elm House, which has no number of its own.
    Ash House texts from its own number, which the STOP did not reach."""
    from tests.support import sms_form

    post_signed("/twilio/sms", sms_form("STOP", from_number=member.phone))
    assert runner.invoke(args=["community", "create", "Ash House", "--phone-number", "01632 960001"]).exit_code == 0
    one = runner.invoke(args=["member", "add", "--community", "Ash House", "--name", "Alex",
                              "--phone", "07700 900123"])
    assert one.exit_code == 0, one.output
    assert "to Ash House; welcome message queued" in one.output
    assert runner.invoke(args=["community", "create", "Elm House"]).exit_code == 0
    many = import_members(runner, tmp_path, "name,phone,channel\nAlex,+44 7700 900123,SMS\nBea,07700 900124,Voice\n",
                          community="Elm House")
    assert many.exit_code == 0, many.output
    assert "Imported 2 of 2 rows into Elm House." in many.output
    assert "line 2: added opted out: this number texted STOP" in many.output
    session.expire_all()
    statuses = session.execute(select(Member.name, Member.status, Member.consent_at.is_(None))
                               .order_by(Member.id)).all()
    assert statuses == [("Alex", "opted_out", False), ("Alex", "active", False), ("Alex", "opted_out", True),
                        ("Bea", "active", False)]
    assert session.scalar(select(Member.channel).where(Member.name == "Bea")) == "voice"
    welcomed = session.scalars(select(OutboundMessage.to_number).where(OutboundMessage.kind == "welcome")).all()
    assert welcomed == ["+447700900123"]  # Alex at Ash House; Bea takes calls, which are not built yet
    # START to the number the STOP went to opts the phone back in wherever it is texted from it.
    post_signed("/twilio/sms", sms_form("START", from_number=member.phone))
    session.expire_all()
    assert set(session.scalars(select(Member.status).where(Member.phone == member.phone))) == {"active"}


def _import_calling(monkeypatch, at_row, then):
    """Make the import call `then()` just before it adds row number `at_row` (0 is the first)."""
    import service.cli.directory as cli

    real, calls = cli.add_member, []

    def add_member(*args, **kwargs):
        if len(calls) == at_row:
            then()
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "add_member", add_member)


def _members_csv(count):
    return "name,phone\n" + "".join(f"M{i},07700 90{i:04d}\n" for i in range(count))


@pytest.mark.skipif(DATABASE != "sqlite", reason="SQLite's one write lock is what a long import would hold")
def test_an_import_lets_other_writers_in_between_its_batches(runner, community, session, tmp_path, monkeypatch,
                                                               database_url):
    import sqlite3

    wrote = []

    def another_writer():  # a webhook, say, which must not wait for the whole file
        other = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # "database is locked" while the import holds the write lock
        other.execute("ROLLBACK")
        other.close()
        wrote.append(True)

    _import_calling(monkeypatch, 100, another_writer)
    result = import_members(runner, tmp_path, _members_csv(150))
    assert result.exit_code == 0, result.output
    assert wrote == [True] and "Imported 150 of 150 rows" in result.output


def test_an_interrupted_import_keeps_its_whole_batches_and_says_where_it_stopped(runner, community, session,
                                                                                tmp_path, monkeypatch):
    def ctrl_c():
        raise KeyboardInterrupt

    _import_calling(monkeypatch, 150, ctrl_c)
    result = import_members(runner, tmp_path, _members_csv(250))
    assert result.exit_code == 1
    assert "stopped at line 102: the rows before it are imported; run the import again" in result.output
    session.expire_all()
    assert session.scalar(select(func.count(Member.id))) == 100
    assert session.scalar(select(func.count(OutboundMessage.id)).where(OutboundMessage.kind == "welcome")) == 100
    monkeypatch.undo()
    again = import_members(runner, tmp_path, _members_csv(250))
    assert "Imported 150 of 250 rows into Oak House; 100 already in it." in again.output
    assert "line 101: not added: +447700900099 is already a member of Oak House" in again.output
    assert again.exit_code == 0  # running it again is the way on, not an error
    assert session.scalar(select(func.count(Member.id))) == 250


def test_imported_welcomes_are_bulk_so_replies_do_not_wait_behind_them(runner, community, session, tmp_path, redis):
    result = import_members(runner, tmp_path, "name,phone\n" + "".join(f"M{i},07700 9003{i:02d}\n" for i in range(30)))
    assert result.exit_code == 0, result.output
    queues = session.scalars(select(OutboundMessage.queue).where(OutboundMessage.kind == "welcome")).all()
    assert queues == ["bulk"] * 30
    # 30 rows committed together: a batch job of 25 and one of 5, nothing on the replies queue.
    assert (redis.llen("rq:queue:bulk"), redis.llen("rq:queue:replies")) == (2, 0)


def test_import_says_a_blank_first_line_is_why_it_finds_no_header(runner, community, session, tmp_path):
    result = import_members(runner, tmp_path, "\nname,phone\nAna,07700 900201\n")
    assert result.exit_code == 1 and "its first line is blank, and the header row must come first" in result.output
    assert "first line is blank" not in import_members(runner, tmp_path, "").output


def test_an_import_of_a_file_larger_than_it_takes_is_refused_before_any_row(runner, community, session, tmp_path,
                                                                             monkeypatch):
    """A file chosen by mistake is refused after reading no more than the limit, not read whole."""
    import service.cli.directory

    monkeypatch.setattr(service.cli.directory, "MAX_IMPORT_CHARACTERS", 40)
    result = import_members(runner, tmp_path, "name,phone\nAna,07700 900201\nBo,07700 900202\n")  # 44 characters
    assert result.exit_code == 1
    assert "is larger than an import takes (40 characters" in result.output and "Split it" in result.output
    assert session.scalar(select(func.count(Member.id))) == 0
    assert import_members(runner, tmp_path, "name,phone\nAna,07700 900201\n").exit_code == 0  # 29 characters


def test_import_reads_the_usual_names_of_the_columns(runner, community, session, tmp_path):
    result = import_members(runner, tmp_path, "Full Name,Phone Number,Language\nAna,07700 900201,cy\n")
    assert result.exit_code == 0, result.output
    result = import_members(runner, tmp_path, "name,Mobile\nBo,07700 900202\n")
    assert result.exit_code == 0, result.output
    assert sorted(session.scalars(select(Member.phone))) == ["+447700900201", "+447700900202"]


def test_import_names_the_line_each_refused_row_is_on(runner, community, session, tmp_path):
    csv = tmp_path / "members.csv"
    # A byte-order mark, blank lines, a name quoted over two lines, a control character, an extra column.
    csv.write_bytes("\ufeffName,Phone\r\nAna,07700 900201,extra\r\n\r\nBo,07700 900201\r\n\r\n"
                    '"Cy\nCyrus",07700900203\r\nDi,12\r\nEd\x00,07700900205\r\nFa,07700900206\r\n'.encode())
    result = runner.invoke(args=["members", "import", str(csv), "--community", "Oak House"])
    assert result.exit_code == 1, result.output  # rows were refused
    assert "Imported 2 of 6 rows" in result.output
    assert "line 2: refused: 3 values where the header names 2 columns" in result.output
    assert "line 6: refused: a quoted value runs on to line 7 (is a quote left open?)" in result.output  # Cy\nCyrus
    assert "line 8: refused:" in result.output and "'12'" in result.output
    assert "line 9: refused: a member's name must not contain control characters" in result.output
    assert session.scalar(select(func.count(Member.id))) == 2
    assert sorted(session.scalars(select(Member.name))) == ["Bo", "Fa"]


def test_import_turns_a_database_refusal_into_a_report_line(runner, community, session, tmp_path, monkeypatch):
    # Whatever the checks miss and the database refuses costs that row, not the import: here a
    # NOT NULL the database itself enforces, on SQLite and PostgreSQL alike.
    from sqlalchemy import text

    import service.cli.directory as cli

    def add_then_break(session_, community_, name, phone, **kw):
        member = add_member(session_, community_, name, phone, **kw)
        if name == "Bo":
            session_.execute(text("UPDATE members SET name = NULL WHERE id = :id"), {"id": member.id})
        return member

    monkeypatch.setattr(cli, "add_member", add_then_break)
    result = import_members(runner, tmp_path, "name,phone\nAna,07700900201\nBo,07700900202\nCy,07700900203\n")
    assert result.exit_code == 1, result.output  # a row was refused
    assert "Imported 2 of 3 rows" in result.output
    assert "line 3: refused: the database would not store it (" in result.output
    assert sorted(session.scalars(select(Member.name))) == ["Ana", "Cy"]
    # Bo's welcome went with Bo's row: the savepoint took back everything of that row.
    assert session.scalar(select(func.count(OutboundMessage.id))) == 2


def another_writer_adds_first(app, monkeypatch) -> list[str]:
    """Have another session add the first number add_member is given, as "Ana", between add_member's
    check that the number is free and its insert; the numbers raced on are listed in what it returns."""
    from sqlalchemy.orm import Session

    import service.directory as directory

    real, raced = directory.sharing_sender, []

    def the_other_writer_first(phone, community_):  # add_member calls it between its check and its insert
        if not raced:
            raced.append(phone)
            with Session(app.extensions["hearth_db"].engine) as other:
                add_member(other, other.get(Community, community_.id), "Ana", phone, welcome=False)
                other.commit()
        return real(phone, community_)

    monkeypatch.setattr(directory, "sharing_sender", the_other_writer_first)
    return raced


@pytest.mark.skipif(DATABASE == "sqlite", reason="SQLite's import holds the write lock from its check to its insert")
def test_a_member_another_import_adds_between_the_check_and_the_insert_is_already_a_member(runner, community, app,
                                                                                         session, tmp_path,
                                                                                         monkeypatch):
    """Two imports of one file at once: the other adds Ana after this one found her number free and
    before it inserts her. The database's unique (community, phone) refuses the insert; that is
    the "not added" a second run of the import reports, not a refusal."""
    raced = another_writer_adds_first(app, monkeypatch)
    result = import_members(runner, tmp_path, "name,phone\nAna,07700 900201\nBo,07700 900202\n")
    assert raced == ["+447700900201"]
    assert result.exit_code == 0, result.output
    assert "Imported 1 of 2 rows into Oak House; 1 already in it." in result.output
    assert "line 2: not added: +447700900201 is already a member of Oak House" in result.output
    assert "refused" not in result.output
    assert sorted(session.scalars(select(Member.name))) == ["Ana", "Bo"]
    # Ana's row took back its welcome with it: Bo's is the one queued.
    assert session.scalars(select(OutboundMessage.to_number)).all() == ["+447700900202"]


@pytest.mark.skipif(DATABASE == "sqlite", reason="SQLite's write lock is held from the check to the insert")
def test_member_add_of_a_number_another_writer_adds_between_the_check_and_the_insert_is_already_a_member(
        runner, community, app, session, monkeypatch):
    raced = another_writer_adds_first(app, monkeypatch)
    result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Ana B",
                                 "--phone", "07700 900201"])
    assert raced == ["+447700900201"]
    assert result.exit_code == 1
    assert "Error: +447700900201 is already a member of Oak House" in result.output, result.output
    assert "refused" not in result.output


def test_a_second_run_of_an_import_finds_a_member_whose_number_is_refused_today_already_in(runner, community,
                                                                                           session, tmp_path):
    """Alex joined on a UK personal (070) number, which Hearth took then and refuses now: a second
    run of the file says Alex is already a member, and succeeds, as it does for everyone else."""
    session.add(Member(community_id=community.id, name="Alex", phone="+447011234567", status="active",
                       channel="sms", created_at=community.created_at, fields={}))
    session.commit()
    result = import_members(runner, tmp_path, "name,phone\nAlex,07011 234567\n")
    assert result.exit_code == 0, result.output
    assert "not added: +447011234567 is already a member of Oak House" in result.output


def test_import_reports_a_quote_left_open_and_keeps_the_rows_before_it(runner, community, session, tmp_path):
    result = import_members(runner, tmp_path, 'name,phone\nAna,07700 900201\n\n\nBo,"07700 900202" x\nCy,07700 900203\n'
                                              '\n"Di,07700 900204\nEd,07700 900205\n')
    assert result.exit_code == 1, result.output  # rows were refused
    assert "Imported 2 of 4 rows" in result.output
    assert "line 5: refused: not valid CSV" in result.output
    assert ("lines 7-9: refused: a quote opened in these lines is never closed, so the rest of the file cannot"
            " be read") in result.output
    assert sorted(session.scalars(select(Member.name))) == ["Ana", "Cy"]


def test_import_refuses_a_header_naming_a_column_twice_in_the_words_of_the_header(runner, community, session,
                                                                                  tmp_path):
    """name,phone,phone: which phone is meant? The last one would win without a word. The refusal
    names the columns as the file has them: an operator looks for Mobile, not for phone."""
    result = import_members(runner, tmp_path, "name,Phone,phone\nUma,07700 900703,07700 900704\n")
    assert result.exit_code == 1
    assert 'the header row has "Phone" and "phone", both read as phone: which column is meant?' in result.output
    result = import_members(runner, tmp_path, "Name,Mobile,Telephone\nUma,07700 900703,07700 900704\n")
    assert result.exit_code == 1
    assert 'the header row has "Mobile" and "Telephone", both read as phone: which column is meant?' in result.output
    result = import_members(runner, tmp_path, "name,phone,phone\nUma,07700 900703,07700 900704\n")
    assert result.exit_code == 1 and 'the header row has "phone" 2 times: which column is meant?' in result.output
    assert session.scalar(select(func.count(Member.id))) == 0


def test_import_names_the_columns_it_does_not_read_before_it_imports(runner, community, session, tmp_path):
    """A misspelt language column would leave every member in the community's language, and a
    status column is not one an import sets: the operator is told which columns go unread, in the
    file's own words, and the rows go in as before."""
    result = import_members(runner, tmp_path, "name,phone,langauge,Status,\nAna,07700 900201,cy,paused,\n")
    assert result.exit_code == 0, result.output
    assert ("Columns not read: langauge, Status (an import reads name, phone, language and channel)."
            in result.output.splitlines()), result.output
    assert result.output.index("Columns not read") < result.output.index("Imported 1 of 1 rows")
    assert session.execute(select(Member.name, Member.language, Member.status)).all() == [("Ana", None, "active")]
    read = import_members(runner, tmp_path, "Full Name,Mobile,Language,Channel\nBo,07700 900202,cy,sms\n")
    assert read.exit_code == 0 and "not read" not in read.output, read.output


def test_import_refuses_a_row_with_more_values_than_the_header_names(runner, community, session, tmp_path):
    """An unquoted "Smith, Ana" shifts every value on; a value the header has no column for was
    dropped without a word. A trailing empty value (a spreadsheet's last comma) is no value."""
    result = import_members(runner, tmp_path, "name,phone\nAna,07700 900201,cy\nBo,07700 900202,\n")
    assert result.exit_code == 1, result.output
    assert ("line 2: refused: 3 values where the header names 2 columns (is a value with a comma in it not in"
            " quotes?)") in result.output
    assert session.scalars(select(Member.name)).all() == ["Bo"]
    # A header that ends in a comma (a spreadsheet's export) names no column there either.
    result = import_members(runner, tmp_path, "name,phone,\nCy,07700 900203,cy\nDi,07700 900204,,x\nEd,07700 900205,\n")
    assert "line 2: refused: 3 values where the header names 2 columns" in result.output, result.output
    assert "line 3: refused: 4 values where the header names 2 columns" in result.output
    assert sorted(session.scalars(select(Member.name))) == ["Bo", "Ed"]


def test_a_row_shifted_by_an_unquoted_comma_into_empty_columns_is_refused_with_the_shift_named(runner, community,
                                                                                                tmp_path):
    """The row's extra value is empty, so it passes as a spreadsheet's last comma; the number has
    moved into the language column. The refusal names the shift as well as the value it moved."""
    result = import_members(runner, tmp_path, "name,phone,language,channel\nSmith, Ana,07700 900204,,\n")
    assert result.exit_code == 1, result.output
    assert ("line 2: refused: '07700 900204' is not a language code" in result.output
            and "(5 values where the header names 4 columns: is a value with a comma in it not in quotes?)"
            in result.output), result.output


def test_import_without_the_needed_columns_says_so(runner, community, tmp_path):
    result = import_members(runner, tmp_path, "who,number\nAna,07700900201\n")
    assert result.exit_code == 1 and "name and phone" in result.output


def test_facilitator_add(runner, community, session):
    result = runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo",
                                 "--phone", "07700 900100", "--on-call"])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Facilitator.on_call)) is True
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "facilitator.added")) == 1


def test_facilitator_add_says_who_gets_the_alerts(runner):
    """Only the on-call facilitators get an alert, of any severity, at once: there is no escalation
    to the others later (not built), so the option must not promise they are told "first"."""
    shown = " ".join(runner.invoke(args=["facilitator", "add", "--help"]).output.split())
    assert "--on-call Gets the community's alerts; while nobody is on call, every facilitator gets them." in shown


def test_facilitator_add_refuses_a_landline_saying_alerts_go_by_text(runner, community, session):
    result = runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo",
                                 "--phone", "020 7946 0099"])
    assert result.exit_code == 1
    assert "a landline, which cannot receive texts (alerts reach a facilitator by text: give a mobile)" \
        in result.output


def test_a_uk_personal_number_is_refused_for_members_and_facilitators(runner, community, session):
    """07011 234567 forwards to some phone at a premium-rate-like price: the phone itself is wanted."""
    for args in (["member", "add"], ["member", "add", "--channel", "voice"], ["facilitator", "add"]):
        result = runner.invoke(args=[*args, "--community", "Oak House", "--name", "Jo", "--phone", "07011 234567"])
        assert result.exit_code == 1 and "a personal (forwarding) number" in result.output, (args, result.output)
    assert session.scalar(select(func.count(Member.id))) == session.scalar(select(func.count(Facilitator.id))) == 0


def test_unknown_community_is_named(runner, session):
    result = runner.invoke(args=["member", "add", "--community", "Nowhere", "--name", "A", "--phone", "07700900123"])
    assert result.exit_code == 1 and "no community called 'Nowhere'" in result.output


def test_simulate_chats_through_the_webhook(runner, member, session):
    result = runner.invoke(args=["simulate", "--phone", "07700 900123"], input="help\nstop\nhello\n")
    assert result.exit_code == 0, result.output
    assert "Samaritans" in result.output
    assert "no more messages" in result.output
    assert "[member opted_out]" in result.output


def test_simulate_takes_a_line_that_is_not_utf8(config, member, session):
    """A pasted Latin-1 "café", or a long line the terminal cut inside a character: the member's
    text arrives with U+FFFD for the bad bytes, as from a phone, and the chat goes on."""
    import os
    import subprocess
    import sys

    if DATABASE != "sqlite":
        pytest.skip("the subprocess reads the database the fixtures wrote: SQLite's file is enough to show it")
    env = {**os.environ, "DATABASE_URL": config.database_url, "REDIS_URL": config.redis_url, "HEARTH_TRANSPORT": "console",
           "HEARTH_SEND_RATE": "0", "TWILIO_AUTH_TOKEN": "", "TWILIO_ACCOUNT_SID": ""}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "service:create_app", "simulate", "--phone",
                           "07700 900123"], input=b"caf\xe9\nhelp\n", env=env, capture_output=True, timeout=120)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()[-600:]
    session.expire_all()
    assert "caf\ufffd" in session.scalars(select(InboundMessage.body)).all()


def test_simulate_shows_who_an_alert_was_texted_to(runner, member, session):
    runner.invoke(args=["facilitator", "add", "--community", "Oak House", "--name", "Jo", "--phone", "07700 900100",
                        "--on-call"])
    result = runner.invoke(args=["simulate", "--phone", "07700 900123"], input="checkin\n1\n")
    assert result.exit_code == 0, result.output
    assert "[alert high: Alex checked in at 1 of 5 (very low). Texted to Jo.]" in result.output


def test_a_second_community_without_a_number_is_refused(runner, member, session):
    """Oak House has a number; one community without a number takes the texts to any other number,
    two could not be told apart: a second is refused, and changes nothing."""
    created = runner.invoke(args=["community", "create", "Elm House"])
    assert created.exit_code == 0, created.output
    refused = runner.invoke(args=["community", "create", "Ash House"])
    assert refused.exit_code == 1 and ("Elm House already uses the shared number" in refused.output
                                       and "give Ash House its own with --phone-number" in refused.output)
    assert sorted(session.scalars(select(Community.name))) == ["Elm House", "Oak House"]
    assert runner.invoke(args=["community", "create", "Ash House", "--phone-number", "01632 960500"]).exit_code == 0


def test_simulate_names_a_community_texts_cannot_reach(runner, member, session):
    """Two communities without a number (made before they were refused) cannot be told apart."""
    session.add_all([Community(name=name, timezone="Europe/London", created_at=member.consent_at)
                     for name in ("Elm House", "Ash House")])
    session.commit()
    simulated = runner.invoke(args=["simulate", "--phone", "07700 900123", "--community", "Elm House"], input="")
    assert simulated.exit_code == 1 and "Elm House has no number of its own" in simulated.output


def test_a_community_without_a_number_still_takes_its_texts_when_another_gets_one(runner, session, post_signed):
    from tests.support import sms_form, twiml_messages

    assert runner.invoke(args=["community", "create", "Oak House"]).exit_code == 0
    assert runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Alex", "--phone",
                               "07700 900123", "--no-welcome"]).exit_code == 0
    created = runner.invoke(args=["community", "create", "Elm House", "--phone-number", "01632 960500"])
    assert created.exit_code == 0, created.output
    answer = post_signed("/twilio/sms", sms_form("HELP", to="+441632960000"))  # the configured sender
    [help_text] = twiml_messages(answer.get_data(as_text=True))
    assert "Oak House" in help_text


def test_simulate_live_says_a_reply_the_carrier_did_not_take_stays_queued(config, clock, member, session, capsys):
    """--live with Twilio out of reach: what was queued for the phone is left for a worker (its
    tries to come), and the chat goes on."""
    import dataclasses

    from service import create_app
    from service.cli.simulate import _drain
    from service.outbox import queue_message

    queue_message(session, key="b", to=member.phone, body="Film night is on", kind="flow", member=member)
    session.commit()
    live = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base="http://127.0.0.1:1"),
                      overrides={"TESTING": True, "CLOCK": clock})
    with live.app_context():
        assert _drain(member.phone) == []
    live.extensions["hearth_db"].engine.dispose()
    assert "[not sent yet (could not reach Twilio: ConnectionError); it stays queued for a worker]" \
        in capsys.readouterr().out
    session.expire_all()
    assert session.scalars(select(OutboundMessage.state).where(OutboundMessage.kind == "flow")).all() == ["pending"]


def test_simulate_finds_the_one_community_a_phone_is_a_member_of(runner, member, session):
    """The demo's member texts the demo community after a newcomer created a community of their own."""
    assert runner.invoke(args=["community", "create", "Elm House", "--phone-number", "01632 960500"]).exit_code == 0
    result = runner.invoke(args=["simulate", "--phone", "07700 900123"], input="help\n")
    assert result.exit_code == 0 and "Texting Oak House as Alex" in result.output, result.output
    stranger = runner.invoke(args=["simulate", "--phone", "07700 900999"], input="")
    assert stranger.exit_code == 1
    assert ("several communities exist and 07700 900999 is a member of none of them: say which with --community"
            in stranger.output)


def test_simulate_with_several_communities_says_a_phone_that_is_not_one_is_not(runner, member, session):
    assert runner.invoke(args=["community", "create", "Elm House", "--phone-number", "01632 960500"]).exit_code == 0
    result = runner.invoke(args=["simulate", "--phone", "abc"], input="")
    assert result.exit_code == 1
    assert "'abc' is not a usable phone number: it is not a phone number" in result.output, result.output
    assert "member of" not in result.output


def test_simulate_from_an_unknown_number_suggests_the_community_s_own_members(runner, member, community, session):
    result = runner.invoke(args=["simulate", "--phone", "07700 900999"], input="hi\n")
    assert result.exit_code == 0, result.output
    assert "(not a member: try 07700 900123)" in result.output


def test_simulate_in_a_community_without_members_says_how_to_add_one(runner, community):
    result = runner.invoke(args=["simulate", "--phone", "07700 900999"], input="")
    assert result.exit_code == 0, result.output
    assert "add someone with `hearth member add`" in result.output


@pytest.mark.parametrize("rate", [10, 0])
def test_simulate_says_so_when_no_redis_holds_the_send_rate_limit(config, clock, member, rate):
    """With no rate set too: a carrier's hold on the sender is kept in Redis all the same."""
    import dataclasses

    from service import create_app

    app = create_app(dataclasses.replace(config, redis_url="redis://127.0.0.1:1/0", send_rate=rate),
                     overrides={"CLOCK": clock})
    try:
        with app.app_context():  # the fixtures' app has a context pushed already: this one is current
            result = app.test_cli_runner().invoke(args=["simulate", "--phone", "07700 900123"], input="hello\n")
    finally:
        app.extensions["hearth_db"].engine.dispose()
    assert result.exit_code == 1, result.output
    assert "no Redis answers at redis://127.0.0.1:1/0, where the send rate limit is kept" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, RedisError)


def test_flows_validate_says_ok_for_each_good_file_and_names_file_line_and_step_of_a_bad_one(runner, tmp_path):
    good = runner.invoke(args=["flows", "validate"])
    assert good.exit_code == 0, good.output
    assert "flows/bundled/checkin.yaml: flow 'checkin', 22 steps" in good.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: broken\nversion: 1\nsteps:\n  - id: hi\n    type: send\n    txt: Hello\n")
    bad = runner.invoke(args=["flows", "validate", str(broken)])
    assert bad.exit_code == 1
    assert f"error: {broken}:6: step 'hi': unknown field 'txt'" in bad.output
    typo = tmp_path / "typo.yaml"
    typo.write_text("id: typo\nversion: 1\nsteps:\n  - id: go\n    type: start_flow\n    flow: chekin\n")
    refused = runner.invoke(args=["flows", "validate", str(typo)])
    assert refused.exit_code == 1
    assert f"error: {typo}:4: step 'go': start_flow to a flow that is not loaded: 'chekin'" in refused.output


def test_options_that_default_to_something_say_what(runner):
    """An option left out means something: its help says what, as `flows validate` does."""
    tested = " ".join(runner.invoke(args=["flows", "test", "--help"]).output.split())
    assert "Run the example conversations in flow files (default: bundled and HEARTH_FLOWS_DIR)." in tested
    added = " ".join(runner.invoke(args=["member", "add", "--help"]).output.split())
    assert "--language TEXT The member's language (like en or cy) [default: the community's]" in added


def test_members_list_shows_each_member_their_state_and_when_they_last_texted(runner, community, session,
                                                                               post_signed, clock):
    from tests.support import sms_form

    for name, phone in (("bea", "07700 900124"), ("Alex", "07700 900123"), ("Cy", "07700 900125")):
        assert runner.invoke(args=["member", "add", "--community", "Oak House", "--name", name, "--phone", phone,
                                   "--no-welcome"]).exit_code == 0
    post_signed("/twilio/sms", sms_form("hello", from_number="+447700900123"))  # 09:00 UTC, 09:00 in London
    post_signed("/twilio/sms", sms_form("STOP", from_number="+447700900125"))
    listed = runner.invoke(args=["members", "list", "--community", "oak house"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "name  phone         state      language  channel  last texted (Europe/London)",
        "Alex  07700 900123  active     en        sms      2026-11-23 09:00",
        "bea   07700 900124  active     en        sms      never",
        "Cy    07700 900125  opted out  en        sms      2026-11-23 09:00",
        "3 member(s) of Oak House: 2 active, 1 opted out.",
    ]
    only = runner.invoke(args=["members", "list", "--community", "Oak House", "--status", "opted_out"])
    assert [line.split()[0] for line in only.output.splitlines()] == ["name", "Cy", "1"]
    none = runner.invoke(args=["members", "list", "--community", "Oak House", "--status", "paused"])
    assert none.output == "Oak House has no paused members.\n"


def test_members_list_takes_a_state_as_people_write_it_or_as_it_is_stored(runner, community, session):
    add_member(session, community, "Cy", "07700 900125", welcome=False).status = "opted_out"
    add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    for status in ("opted-out", "opted_out", "Opted out", "OPTED-OUT"):
        only = runner.invoke(args=["members", "list", "--community", "Oak House", "--status", status])
        assert only.exit_code == 0, (status, only.output)
        assert [line.split()[0] for line in only.output.splitlines()] == ["name", "Cy", "1"], status
    wrong = runner.invoke(args=["members", "list", "--community", "Oak House", "--status", "gone"])
    assert wrong.exit_code == 2 and "'active', 'paused', 'opted-out', 'left'" in wrong.output, wrong.output


def test_member_add_takes_a_channel_in_any_case_as_an_import_does(runner, community, session):
    for phone, channel in (("07700 900123", "SMS"), ("020 7946 0018", "Voice")):
        added = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", channel, "--phone", phone,
                                    "--channel", channel, "--no-welcome"])
        assert added.exit_code == 0, added.output
    assert session.scalars(select(Member.channel).order_by(Member.id)).all() == ["sms", "voice"]


@pytest.mark.parametrize("separator", [";", "\t"])
def test_an_import_reads_a_spreadsheets_semicolons_or_tabs_and_skips_its_empty_rows(runner, community, session,
                                                                                   tmp_path, separator):
    text = separator.join(["Name", "Phone", "Language"]) + "\r\n"
    text += separator.join(["Ana", "07700 900401", "en"]) + "\r\n" + separator * 2 + "\r\n"
    text += separator.join(["Bo", "07700 900402", ""]) + "\r\n" + separator * 2 + "\r\n" + separator * 2 + "\r\n"
    result = import_members(runner, tmp_path, text)
    assert result.exit_code == 0, result.output
    assert "Imported 2 of 2 rows" in result.output and "refused" not in result.output
    assert session.scalars(select(Member.name).order_by(Member.id)).all() == ["Ana", "Bo"]


@pytest.mark.parametrize("header", ["Name;Mobile", "Full Name\tTelephone", "name;Phone Number"])
def test_an_import_reads_the_usual_names_of_the_columns_between_semicolons_or_tabs(runner, community, session,
                                                                                   tmp_path, header):
    separator = ";" if ";" in header else "\t"
    result = import_members(runner, tmp_path, f"{header}\nQ{separator}07700 900330\n")
    assert result.exit_code == 0, result.output
    assert session.execute(select(Member.name, Member.phone)).all() == [("Q", "+447700900330")]


def test_simulate_texts_a_community_without_a_number_where_its_members_would(runner, member, session):
    """Oak House has the configured sender's number; Elm House, none: its texts arrive at another number."""
    assert runner.invoke(args=["community", "create", "Elm House"]).exit_code == 0
    assert runner.invoke(args=["member", "add", "--community", "Elm House", "--name", "Bo", "--phone",
                               "07700 900124", "--no-welcome"]).exit_code == 0
    result = runner.invoke(args=["simulate", "--phone", "07700 900124", "--community", "Elm House"], input="HELP\n")
    assert result.exit_code == 0, result.output
    assert "Elm House" in result.output.split("you>", 1)[1]


def test_what_quiet_hours_held_moves_when_they_change(runner, community, session, clock):
    from datetime import datetime, timezone

    clock.now = datetime(2026, 11, 23, 22, 0, tzinfo=timezone.utc)  # London, in quiet hours 21:00-08:00
    assert runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Alex", "--phone",
                               "07700 900123"]).exit_code == 0

    def welcome_due():
        session.expire_all()
        return session.scalar(select(OutboundMessage.due_at).where(OutboundMessage.kind == "welcome"))

    assert welcome_due() == datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "21:00-06:30"]).exit_code == 0
    assert welcome_due() == datetime(2026, 11, 24, 6, 30, tzinfo=timezone.utc)
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "off"]).exit_code == 0
    assert welcome_due() == clock.now


def test_the_audit_log_names_the_account_that_ran_a_command(runner, community, session, monkeypatch):
    import getpass

    monkeypatch.delenv("SUDO_USER", raising=False)  # not run through sudo
    assert runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Alex", "--phone",
                               "07700 900123"]).exit_code == 0
    assert runner.invoke(args=["community", "set", "Oak House", "--quiet-hours", "off"]).exit_code == 0
    actors = session.scalars(select(AuditEvent.actor).where(AuditEvent.action.in_(
        ["member.added", "community.updated"]))).all()
    assert actors == [f"cli:{getpass.getuser()}"] * 2


def test_simulate_refuses_a_live_transport_unless_told(config, clock, member, session):
    """Against Twilio, what an operator types would be stored as the member's texts and answered by real SMS."""
    import dataclasses

    from service import create_app

    # A closed port on loopback: were the refusal to fail, nothing would leave the machine.
    live = create_app(dataclasses.replace(config, transport="twilio", twilio_api_base="http://127.0.0.1:9"),
                      overrides={"TESTING": True, "CLOCK": clock})
    with live.app_context():
        result = live.test_cli_runner().invoke(args=["simulate", "--phone", "07700 900123"], input="stop\n")
    assert result.exit_code == 1 and "--live" in result.output
    session.expire_all()
    assert session.get(type(member), member.id).status == "active"
    live.extensions["hearth_db"].engine.dispose()


def test_db_upgrade_says_where_the_database_is_not_where_it_was_asked_to_go(runner, session):
    from service.migrations import revisions

    newest = revisions()[-1]
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0 and f"Database is at {newest} (the newest)." in result.output, result.output
    back = runner.invoke(args=["db", "upgrade", "0001"])  # upgrading never goes back
    assert back.exit_code == 0 and f"Database is at {newest} (the newest)." in back.output, back.output
    assert "It was past 0001 already; `hearth db upgrade` does not go back." in back.output


@pytest.mark.parametrize("tables", ["Hearth's", "none"])
def test_db_upgrade_of_a_database_a_newer_hearth_migrated_leaves_it_as_it_is(runner, session, tables):
    """A release rolled back after its migrations ran: its database is at a revision this code does
    not know, which this code runs on (/healthz is ready), so its release step must not fail."""
    from sqlalchemy import text

    from service.migrations import revisions

    newest = revisions()[-1]
    session.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    session.commit()
    try:
        if tables == "none":  # another application's database, which has a table of that name
            session.execute(text("ALTER TABLE outbound_messages RENAME TO outbox_kept"))
            session.commit()
        result = runner.invoke(args=["db", "upgrade"])
    finally:
        if tables == "none":
            session.execute(text("ALTER TABLE outbox_kept RENAME TO outbound_messages"))
        session.execute(text("UPDATE alembic_version SET version_num = :newest"), {"newest": newest})
        session.commit()
    if tables == "none":
        assert result.exit_code == 1 and "the database is at f00dfeed, a revision that is not Hearth's" in result.output
    else:
        assert result.exit_code == 0, result.output
        assert f"Database is at f00dfeed, newer than this code's newest migration ({newest})" in result.output


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_db_upgrade_reads_where_a_database_is_by_any_url_hearth_takes(config, clock, scheme):
    """A deployment's DATABASE_URL is often postgres://...: reading the revision after the upgrade
    went through psycopg2 (not installed) and ended in a traceback."""
    import dataclasses

    from service import create_app

    if DATABASE == "sqlite":
        pytest.skip("the postgres:// and postgresql:// forms of a PostgreSQL URL")
    plain = config.database_url.replace("postgresql+psycopg://", scheme)
    app = create_app(dataclasses.replace(config, database_url=plain), overrides={"CLOCK": clock})
    try:
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    finally:
        app.extensions["hearth_db"].engine.dispose()
    assert result.exit_code == 0 and "(the newest)" in result.output, (result.output, repr(result.exception))


def test_member_add_in_quiet_hours_says_when_the_welcome_goes(runner, community, session, clock):
    from datetime import datetime, timezone

    clock.now = datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)  # 23:00 in London: quiet until 08:00
    result = runner.invoke(args=["member", "add", "--community", "Oak House", "--name", "Alex",
                                 "--phone", "07700 900123"])
    assert result.exit_code == 0, result.output
    assert "welcome message queued for 08:00 (quiet hours in Oak House until then)" in result.output


def test_an_import_row_for_another_person_on_a_members_number_is_refused(runner, community, session, tmp_path):
    """Only the same person already in is "not added" (an import run again); Bob on Alex's number
    is a clash a script must see."""
    add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    same = import_members(runner, tmp_path, "name,phone\nALEX,+44 7700 900123\n")
    assert same.exit_code == 0 and "line 2: not added:" in same.output, same.output
    other = import_members(runner, tmp_path, "name,phone\nBob,07700 900123\n")
    assert other.exit_code == 1 and "line 2: refused:" in other.output and "(Alex)" in other.output, other.output


def test_simulate_shows_a_changed_vote_as_saved(runner, member, session):
    started = runner.invoke(args=["flows", "start", "vote", "--community", "Oak House", "--param", "question=Film?",
                                  "--param", "options=Yes,No"])
    assert started.exit_code == 0, started.output
    result = runner.invoke(args=["simulate", "--phone", "07700 900123"], input="1\n2\n")
    assert result.exit_code == 0, result.output
    saved = [line.strip() for line in result.output.splitlines() if line.strip().startswith("[saved")]
    assert len(saved) == 2 and "'Yes'" in saved[0] and "'No'" in saved[1], result.output


def test_hearth_help_offers_no_flask_options_it_does_not_take():
    from click.testing import CliRunner

    from service.cli import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "--env-file" not in result.output and "--app" not in result.output and "--debug" not in result.output
    assert "simulate" in result.output
