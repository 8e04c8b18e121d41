from hypothesis import given, strategies as st
import pytest

from flows.sms import measure


def test_gsm7_single_and_multipart():
    assert measure("a" * 160).segments == 1
    assert measure("a" * 161).segments == 2
    assert measure("a" * 306).segments == 2
    assert measure("a" * 307).segments == 3
    assert measure("£ and é are GSM-7").name == "GSM-7"


def test_extended_characters_count_twice():
    assert measure("€" * 80).segments == 1
    assert measure("€" * 81).segments == 2


def test_one_curly_quote_makes_it_ucs2():
    text = "It’s " + "a" * 66
    m = measure(text)
    assert m.name == "UCS-2" and m.segments == 2
    assert measure("It's " + "a" * 66).segments == 1


def test_emoji_take_two_units():
    assert measure("🙂" * 35).segments == 1
    assert measure("🙂" * 36).segments == 2


@pytest.mark.parametrize("body, segments, expected_encoding", [
    ("a" * 160, 1, "GSM-7"),
    ("a" * 161, 2, "GSM-7"),
    ("a" * 306, 2, "GSM-7"),
    ("a" * 307, 3, "GSM-7"),
    ("€" * 80, 1, "GSM-7"),           # extension characters cost two septets
    ("€" * 81, 2, "GSM-7"),
    ("a" * 152 + "[" + "a" * 152, 3, "GSM-7"),  # 306 septets, but an escape is never split
    ("ж" * 70, 1, "UCS-2"),
    ("ж" * 71, 2, "UCS-2"),
    ("ж" * 134, 2, "UCS-2"),
    ("ж" * 135, 3, "UCS-2"),
    ("\u2019" + "a" * 69, 1, "UCS-2"),  # one curly quote makes it all UCS-2
    ("\u2019" + "a" * 70, 2, "UCS-2"),
    ("\U0001F600" * 35, 1, "UCS-2"),  # each emoji is a surrogate pair
    ("\U0001F600" * 36, 2, "UCS-2"),
])
def test_segments_as_twilio_bills_them(body, segments, expected_encoding):
    size = measure(body)
    assert (size.segments, size.name) == (segments, expected_encoding)


def _one_by_one(text: str) -> tuple[str, int, int]:
    """The plain definition: every character's size, then fill parts without splitting a pair."""
    from flows.sms import GSM7_BASIC, GSM7_EXTENDED

    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        sizes, single, part, name = [2 if c in GSM7_EXTENDED else 1 for c in text], 160, 153, "GSM-7"
    else:
        sizes, single, part, name = [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67, "UCS-2"
    if sum(sizes) <= single:
        return name, sum(sizes), 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return name, sum(sizes), segments


@given(st.text(alphabet=st.sampled_from("ab £€[]^\u2019ж\U0001F600\n\ud800"), max_size=400))
def test_measure_agrees_with_counting_one_character_at_a_time(text):
    size = measure(text)
    assert (size.name, size.units, size.segments) == _one_by_one(text)
