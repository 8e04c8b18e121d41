import pytest

from service.exceptions import InvalidPhone
from service.phones import check_reachable, national, region_for_timezone, to_e164


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900123", "447700900123", "(0)7700-900-123",
                                 " +447700900123 ", "0044 7700 900123"])
def test_common_uk_forms_are_one_number(raw):
    assert to_e164(raw, "GB") == "+447700900123"


@pytest.mark.parametrize("raw, expected", [
    ("０７７００９００８０３", "+447700900803"),  # full-width
    ("٠٧٧٠٠٩٠٠٨٠٤", "+447700900804"),  # Arabic-Indic
    ("٤٤٧٧٠٠٩٠٠٨٠٥", "+447700900805"),  # a long run without its plus
    ("０７７００ ９００８０６", "+447700900806"),
])
def test_digits_of_any_script_are_read_as_those_digits(raw, expected):
    assert to_e164(raw, "GB") == expected


def test_other_regions_read_local_numbers_their_way():
    assert to_e164("(415) 555-2671", "US") == "+14155552671"


@pytest.mark.parametrize("raw, reason", [
    ("", "it is empty"),
    ("hello", "it is not a phone number"),
    ("+44 7700 9001234567", "it is too long"),
    ("+999 123456", "the country code is not valid"),
])
def test_impossible_numbers_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidPhone) as refused:
        to_e164(raw, "GB")
    assert refused.value.reason == reason
    assert reason in str(refused.value)


@pytest.mark.parametrize("raw, region, expected", [
    ("13812345678", "CN", "+8613812345678"),   # a Chinese mobile, not a North American number
    ("11912345678", "BR", "+5511912345678"),   # a São Paulo mobile
    ("81234567890", "ID", "+6281234567890"),   # valid both ways: the community's reading wins
    ("12025550123", "GB", "+12025550123"),     # too long for the UK: an international number without its plus
    ("353861234567", "GB", "+353861234567"),
])
def test_long_digit_runs_are_read_in_the_community_region_first(raw, region, expected):
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize("raw, region, expected", [
    ("447700900123", "IN", "+447700900123"),   # not valid in India: the international reading, as before
    ("905321234567", "BR", "+905321234567"),   # Brazil's reading would drop the 90: a Turkish mobile
])
def test_a_local_reading_must_be_valid_and_keep_every_digit(raw, region, expected):
    assert to_e164(raw, region) == expected


def test_a_long_run_valid_nowhere_is_still_refused():
    with pytest.raises(InvalidPhone) as refused:
        to_e164("99999999999", "IN")
    assert refused.value.reason == "the country code is not valid"


@pytest.mark.parametrize("raw", ["07700 90012", "07911 12345", "(202) 555-0143"])
def test_a_number_in_no_range_in_use_is_refused(raw):
    # A digit missing, one too many, or another country's number without its code: all could be
    # dialled, none reaches anyone.
    with pytest.raises(InvalidPhone) as refused:
        to_e164(raw, "GB")
    assert refused.value.reason == "no number like it is in use (is a digit missing or one too many?)"


@pytest.mark.parametrize("raw, expected", [
    ("07700 900123", "+447700900123"), ("020 7946 0018", "+442079460018"), ("01632 960000", "+441632960000"),
    ("07911 123456", "+447911123456"),  # a real mobile range
])
def test_ofcom_drama_numbers_are_taken_as_real_ones_are(raw, expected):
    assert to_e164(raw, "GB") == expected


@pytest.mark.parametrize("raw", ["07700 900123 ext 5", "07700 900123 x5", "tel:+447700900123;ext=5"])
def test_an_extension_is_refused_not_dropped(raw):
    with pytest.raises(InvalidPhone) as refused:
        to_e164(raw, "GB")
    assert "extension" in refused.value.reason


@pytest.mark.parametrize("raw", ["07700900ABC", "0800 FLOWERS", "07700 9001a23", "07700 900 ABC",
                                 "07700 (900) 12a"])
def test_letters_in_a_number_are_refused_not_read_as_keypad_digits(raw):
    with pytest.raises(InvalidPhone) as refused:
        to_e164(raw, "GB")
    assert refused.value.reason == "it has letters in it"


@pytest.mark.parametrize("raw", ["4.47701E+11", "4.47701e+11", "7.7009E+09", "4,47701E+11", " 4.47701E+11 "])
def test_a_number_a_spreadsheet_wrote_in_scientific_notation_is_refused_saying_so(raw):
    """Excel shows a long number in a General column as 4.47701E+11 and saves its "CSV" that way:
    the last digits are gone, and the operator needs to know that, not that there are letters in it."""
    with pytest.raises(InvalidPhone) as refused:
        to_e164(raw, "GB")
    assert "scientific notation" in refused.value.reason and "as text" in refused.value.reason


@pytest.mark.parametrize("raw", ["07700 900123 (w)", "07700 900123 (mob)", "07700 900123 M", "07700900123 (UK)",
                                 "+44 7700 900123 GB", "Mob: 07700 900123 home", "07700 900123 (mobile) "])
def test_a_note_after_a_whole_number_is_skipped(raw):
    """As spreadsheets have them: the number written is whole without it."""
    assert to_e164(raw, "GB") == "+447700900123"


@pytest.mark.parametrize("raw", ["Mob: 07700 900123", "mobile 07700900123", "Tel. 07700 900123", "tel:+447700900123"])
def test_a_label_before_a_number_is_skipped(raw):
    assert to_e164(raw, "GB") == "+447700900123"


@pytest.mark.parametrize("zone, region", [
    ("Europe/London", "GB"), ("GB", "GB"), ("Europe/Belfast", "GB"),  # a zone's other names are followed
    ("Europe/Dublin", "IE"), ("Europe/Jersey", "JE"), ("America/New_York", "US"), ("US/Eastern", "US"),
    ("Australia/Sydney", "AU"),
    ("Etc/UTC", None), ("UTC", None), ("Antarctica/Troll", None),  # no one country, or none numbers belong to
    ("EST", None), ("CET", None), ("PST8PDT", None),  # rules, not places, though linked to one city's zone
])
def test_a_timezone_gives_the_country_its_numbers_are_read_in(zone, region):
    assert region_for_timezone(zone) == region


@pytest.mark.parametrize("raw, channel, reason", [
    ("020 7946 0018", "sms", "a landline, which cannot receive texts"),
    ("0161 496 0000", "sms", "a landline, which cannot receive texts"),
    ("0800 123 4567", "voice", "a freephone number"),
    ("0909 879 0123", "sms", "a premium-rate number"),
    ("0845 123 4567", "voice", "a premium-rate number"),
    ("0300 123 4567", "sms", "a business number"),
    ("07011 234567", "sms", "a personal (forwarding) number"),
    ("070 1234 5678", "voice", "a personal (forwarding) number"),
])
def test_a_number_that_reaches_no_one_on_its_channel_is_refused(raw, channel, reason):
    with pytest.raises(InvalidPhone) as refused:
        check_reachable(to_e164(raw, "GB"), channel, raw=raw)
    assert reason in refused.value.reason and refused.value.raw == raw


@pytest.mark.parametrize("raw", ["0300 123 4567", "055 1234 5678"])
def test_a_business_number_is_named_without_a_prefix_it_may_not_have(raw):
    with pytest.raises(InvalidPhone) as refused:
        check_reachable(to_e164(raw, "GB"), "voice", raw=raw)
    assert refused.value.reason == "it is a business number, not a person's phone"


@pytest.mark.parametrize("raw, channel", [
    ("07911 123456", "sms"), ("07700 900123", "sms"),  # a mobile; a drama mobile (of no known type)
    ("020 7946 0018", "voice"),  # a landline is called
    ("+1 201 555 0123", "sms"),  # North America cannot tell a mobile from a landline by its number
    ("+353 85 123 4567", "sms"),  # an Irish mobile
])
def test_a_phone_its_channel_can_reach_is_kept(raw, channel):
    check_reachable(to_e164(raw, "US" if raw.startswith("+1") else "GB"), channel)


@pytest.mark.parametrize("e164, region, shown", [
    ("+447700900123", "GB", "07700 900123"), ("+12025550143", "GB", "+1 202-555-0143"),
    ("+353851234567", "IE", "085 123 4567"), ("+447700900123", "IE", "+44 7700 900123"),
])
def test_a_number_is_shown_as_written_at_home_or_with_its_country_code(e164, region, shown):
    assert national(e164, region) == shown
