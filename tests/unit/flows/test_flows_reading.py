"""Reading answers and counting SMS: the small pure functions under the steps."""
from __future__ import annotations

import pytest

from flows.answers import (
    Choice, ChoiceReader, is_skip, options_choices, read_number, word_list, yes_no_choices,
)
from flows.durations import format_duration, parse_duration
from flows.sms import measure, non_gsm7, plain

MOOD = ChoiceReader([
    Choice(1, "low", None, tuple(word_list(["1", "bad", "not good", "very low"]))),
    Choice(3, "ok", None, tuple(word_list(["3", "ok", "not bad"]))),
    Choice(5, "great", None, tuple(word_list(["5", "good", "great"]))),
])


@pytest.mark.parametrize("text,value", [
    ("5", 5), (" 5 ", 5), ("5!", 5), ("GREAT", 5), ("great thanks", 5), ("5 today", 5),
    ("not good", 1), ("Not good at all", 1), ("very low", 1), ("feeling bad", 1), ("not bad", 3),
    ("not great", None), ("isn't good", None), ("good and bad", None), ("", None), ("😀", None),
    ("15", None), ("1600" * 400, None), ("ok ok", 3),
])
def test_choice_reading(text, value):
    choice = MOOD.read(text)
    assert (choice.value if choice else None) == value


@pytest.mark.parametrize("text,value", [
    ("yes", "yes"), ("Y", "yes"), ("yes please", "yes"), ("Ie", "yes"), ("nope", "no"),
    ("no thanks", "no"), ("Na", "no"), ("no not really", "no"), ("yes and no", None), ("maybe", None),
])
def test_yes_no(text, value):
    choice = ChoiceReader(yes_no_choices("a", "b")).read(text)
    assert (choice.value if choice else None) == value


def _rsvp_reader():
    from flows.registry import BUNDLED_DIR
    from flows import load_flow_file

    flow, _ = load_flow_file(BUNDLED_DIR / "meeting_rsvp.yaml")
    return flow.steps["rsvp"].prepared["reader"]


@pytest.mark.parametrize("text,value", [
    ("yes", "yes"), ("Definitely", "yes"), ("Definitely not", None), ("Of course not", None), ("Sure, not", None),
    ("Can't wait!", "yes"), ("won't miss it", "yes"), ("no problem", "yes"), ("can't", "no"), ("not coming", "no"),
    ("Sorry, can't make it", "no"), ("not sure", "maybe"),
])
def test_an_rsvp_is_not_read_as_its_opposite(text, value):
    choice = _rsvp_reader().read(text)
    assert (choice.value if choice else None) == value


@pytest.mark.parametrize("text,value", [("5/5", 5), ("3/5", 3), ("5/10", None), ("2/10", None), ("10/10", None)])
def test_a_score_out_of_another_scale_is_not_read_as_its_first_number(text, value):
    choice = MOOD.read(text)
    assert (choice.value if choice else None) == value


def test_a_whole_answer_is_only_the_answer():
    reader = ChoiceReader(options_choices(["Yes", "No"], "next"))
    assert reader.read("2", whole=True).value == "No" and reader.read("No!", whole=True).value == "No"
    assert reader.read("Running late, back in 2 hours", whole=True) is None
    assert reader.read("no idea", whole=True) is None


def test_options_from_params():
    reader = ChoiceReader(options_choices(["The beach", "Zoo"], "next"))
    assert reader.read("2").value == "Zoo" and reader.read("the BEACH").value == "The beach"
    assert options_choices("nope", "x") == [] and len(options_choices(list(range(80)), "x")) == 50


@pytest.mark.parametrize("text,low,high,value", [
    ("7", 1, 60, 7), ("about 7 days", 1, 60, 7), ("seven", 1, 60, 7), ("0", 1, 60, None),
    ("61", 1, 60, None), ("no idea", 1, 60, None), ("-3", None, None, 3), ("9" * 30, None, None, None),
])
def test_numbers(text, low, high, value):
    assert read_number(text, low, high) == value


@pytest.mark.parametrize("text,skipped", [
    ("SKIP", True), ("Nothing.", True), ("no thanks", True), ("No, thanks!", True), ("nah", True),
    ("No point", False), ("Nah suicidal", False), ("nothing helps", False), ("no one came to see me today", False),
    ("", False),
])
def test_only_a_whole_message_is_a_skip(text, skipped):
    words = frozenset(word_list(["skip", "no", "nothing", "no thanks", "nah"]))
    assert is_skip(text, words) is skipped


@pytest.mark.parametrize("text,encoding,units,segments", [
    ("a" * 160, "GSM-7", 160, 1), ("a" * 161, "GSM-7", 161, 2), ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3), ("€" * 80, "GSM-7", 160, 1), ("é" * 160, "GSM-7", 160, 1),
    ("\u2019" * 70, "UCS-2", 70, 1), ("\u2019" * 71, "UCS-2", 71, 2), ("😀" * 35, "UCS-2", 70, 1),
    ("", "GSM-7", 0, 1),
])
def test_segments(text, encoding, units, segments):
    size = measure(text)
    assert (size.name, size.units, size.segments) == (encoding, units, segments)


def test_plain_spellings_make_gsm7():
    text = "\u201cIt\u2019s fine\u201d \u2013 see you\u2026\u00a0soon"
    assert non_gsm7(text) == ["\u201c", "\u2019", "\u201d", "\u2013", "\u2026", "\u00a0"]
    assert plain(text) == "\"It's fine\" - see you... soon" and non_gsm7(plain(text)) == []


@pytest.mark.parametrize("text,minutes", [("30m", 30), ("2h", 120), ("1d", 1440), ("1d12h", 2160),
                                          ("2w", 20160), ("0h", None), ("1 hour", None), ("", None),
                                          ("366d", 527040), ("367d", None), ("99999999999999w", None),
                                          ("9" * 5000 + "w", None)])
def test_durations(text, minutes):
    found = parse_duration(text)
    assert (found.total_seconds() / 60 if found else None) == minutes
    if found:
        assert parse_duration(format_duration(found)) == found


def _mood_reader():
    from flows import load_flow_file
    from flows.registry import BUNDLED_DIR

    flow, _ = load_flow_file(BUNDLED_DIR / "checkin.yaml")
    return flow.steps["mood"].prepared["reader"]


@pytest.mark.parametrize("text,value", [
    ("Good, no complaints", 4), ("Great, no problems today", 5), ("Fine no issues", 4), ("good not great", None),
    ("I feel 5/10", None), ("about 5/10 today", None), ("5 / 10 today", None), ("5/10 not great", None),
    ("5/5", 5),
])
def test_the_mood_question_reads_what_members_write(text, value):
    choice = _mood_reader().read(text)
    assert (choice.value if choice else None) == value


@pytest.mark.parametrize("text,value", [
    ("2", "No"), ("2 please", "No"), ("option 2", "No"), ("Option two", "No"), ("I vote 2", "No"), ("no", "No"),
    ("Running late, back in 2 hours", None), ("2 or 1", None), ("no idea", None),
])
def test_a_listening_vote_takes_an_option_with_nothing_but_politeness(text, value):
    reader = ChoiceReader(options_choices(["Yes", "No"], "next"), numbers_first=True)
    choice = reader.read(text, whole=True)
    assert (choice.value if choice else None) == value


def test_numbered_options_count_a_number_only_at_the_start():
    reader = ChoiceReader(options_choices(["Yes", "No"], "next"), numbers_first=True)
    assert reader.read("2 - no thanks").value == "No"
    assert reader.read("Running late, back in 2 hours") is None


@pytest.mark.parametrize("text,days", [
    ("2 weeks", 14), ("for 2 weeks", 14), ("2 more weeks please", 14), ("two weeks", 14), ("a week", 7),
    ("a fortnight", 14), ("3 days", 3), ("", 7), ("weekend", 7), ("10 weeks", 60),
])
def test_days_reads_weeks_wherever_they_are(text, days):
    from flows.templating import _days

    assert _days(text, default=7, min=1, max=60) == days


@pytest.mark.parametrize("text,value", [
    ("Well, no, not really", None), ("Fine? No.", None), ("Ok? no", None),
    ("4, seeing the GP on 14/11", 4), ("good, need help 24/7 with the kids", 4), ("2/10", None),
])
def test_the_mood_question_after_a_second_look(text, value):
    choice = _mood_reader().read(text)
    assert (choice.value if choice else None) == value


@pytest.mark.parametrize("text", ["option 2", "I vote 2", "Number 2 please", "2"])
def test_the_vote_question_itself_reads_a_named_option(text):
    choice = ChoiceReader(options_choices(["Yes", "No"], "next"), numbers_first=True).read(text)
    assert (choice.value if choice else None) == "No"


@pytest.mark.parametrize("text,days", [("3 days, away this week", 3), ("4, back midweek", 4), ("2w", 14)])
def test_days_keeps_the_number_of_days_a_member_wrote(text, days):
    from flows.templating import _days

    assert _days(text, default=7, min=1, max=60) == days
