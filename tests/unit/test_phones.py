import pytest

from service.exceptions import InvalidPhone
from service.phones import to_e164


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900123", "447700900123", "(0)7700-900-123",
                                 " +447700900123 ", "0044 7700 900123"])
def test_common_uk_forms_are_one_number(raw):
    assert to_e164(raw, "GB") == "+447700900123"


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
