"""Phone numbers: parsed with `phonenumbers` in the community's region, stored as E.164."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from .exceptions import InvalidPhone

_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "the country code is not valid",
    phonenumbers.ValidationResult.TOO_SHORT: "it is too short",
    phonenumbers.ValidationResult.TOO_LONG: "it is too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
}


def to_e164(raw: str, region: str = "GB", *, entered: bool = True) -> str:
    """`07700 900123`, `+44 7700 900123` and `447700900123` all give `+447700900123`.

    `entered`: a number someone typed in, which must be in a range in use. A number Hearth is
    given to look someone up by (a text's sender) need only be possible: a member stored before
    a range was withdrawn must still be found, and their STOP obeyed.
    """
    text = _ascii_digits((raw or "").strip())
    if not text:
        raise InvalidPhone(raw, "it is empty")
    if _SCIENTIFIC.match(text):
        raise InvalidPhone(raw, "it is in scientific notation, as a spreadsheet shows a long number, and has lost"
                                " digits: format the phone column as text and save the CSV again")
    # A long run of digits may be an international number without its plus ("447700900123" in a
    # spreadsheet). It is read in the community's region when that gives a valid number keeping
    # every digit (13812345678 in China is +86 138...), and as international otherwise.
    if not text.startswith(("+", "0")) and text.isdigit() and len(text) > 10 and not _valid_here(text, region):
        text = "+" + text
    number = _parse(text, raw, region)
    verdict = phonenumbers.is_possible_number_with_reason(number)
    if verdict != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InvalidPhone(raw, _REASONS.get(verdict, "it needs its area code"))
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    # Valid: in a range that is in use, which catches a digit missing or one too many. Ofcom's
    # drama numbers are never in use, and are what a community trying Hearth out is given.
    if entered and not phonenumbers.is_valid_number(number) and not fictional(e164):
        raise InvalidPhone(raw, "no number like it is in use (is a digit missing or one too many?)")
    return e164


# A number as Excel shows one of 12 digits or more in a General column (4.47701E+11, or 4,47701E+11 where the
# decimal mark is a comma), and writes it in its "CSV": read as a number, only its first digits would be left.
_SCIENTIFIC = re.compile(r"^[0-9][.,][0-9]*E\+?[0-9]+$", re.IGNORECASE)


# Ofcom's numbers for drama and testing (never allocated), as E.164 prefixes of 13-character numbers.
_FICTIONAL_GB = ("+447700900", "+441134960", "+441144960", "+441154960", "+441164960", "+441174960",
                 "+441184960", "+441214960", "+441314960", "+441414960", "+441514960", "+441614960",
                 "+442079460", "+441914980", "+441632960", "+442896496", "+442920180", "+443069990",
                 "+448081570", "+449098790")


# Numbers that reach no one a community can text or call: a text to a landline is refused by the
# carrier (21614) and a call to a premium-rate or shared-cost number costs the community. A personal
# number (070 in the UK) forwards to a phone the community is not told, at a premium-rate-like price,
# and many take no texts: the phone it forwards to is the one to give.
_NOT_A_PERSON = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a freephone number",
    # A company's number, not a place's: in the UK 03 and 055, elsewhere other prefixes.
    phonenumbers.PhoneNumberType.UAN: "a business number",
    phonenumbers.PhoneNumberType.PAGER: "a pager",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a personal (forwarding) number, costly to text and call",
}


def check_reachable(e164: str, channel: str = "sms", *, raw: str | None = None,
                    landline: str = "channel voice calls it") -> None:
    """Refuse a number its channel cannot reach a person at: a landline for texts (`landline` says
    what to do instead), and for either a premium-rate, shared-cost, freephone, business or personal
    (forwarding) number, or a pager. A type the library cannot tell (a drama number, a country it knows little of) is
    let through.
    """
    kind = phonenumbers.number_type(phonenumbers.parse(e164))
    if kind in _NOT_A_PERSON:
        raise InvalidPhone(raw or e164, f"it is {_NOT_A_PERSON[kind]}, not a person's phone")
    if channel == "sms" and kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        raise InvalidPhone(raw or e164, f"it is a landline, which cannot receive texts ({landline})")


def fictional(e164: str) -> bool:
    """Whether the number is one of Ofcom's drama numbers: 07700 900xxx, 020 7946 0xxx, 01632 960xxx..."""
    return len(e164) == 13 and e164.startswith(_FICTIONAL_GB)


def national(e164: str, region: str) -> str:
    """A stored number as people in `region` write it: +447700900123 -> 07700 900123 in GB; a
    number of another country keeps its country code (+1 202-555-0100), or it would look local."""
    number = phonenumbers.parse(e164)
    if number.country_code == phonenumbers.country_code_for_region(region):
        return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)


def region_for_timezone(zone: str) -> str | None:
    """The country a timezone is in, as a region numbers can be read in: Europe/London gives GB,
    Europe/Dublin IE, America/New_York US. None for a zone of no one country (Etc/UTC).
    """
    if zone in _RULE_ZONES:
        return None
    region = _zone_countries().get(zone)
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


# The POSIX-style zones of no one country, which the tz database now links to one city's zone
# (EST to America/Panama, CET to Europe/Brussels): followed, they would name that city's country.
_RULE_ZONES = frozenset({"CET", "CST6CDT", "EET", "EST", "EST5EDT", "HST", "MET", "MST", "MST7MDT", "PST8PDT", "WET"})


@cache
def _zone_countries() -> dict[str, str]:
    """Zone name -> ISO country code, from the tz database's zone.tab (every country's zones, one
    a line) and the links in tzdata.zi (GB and Europe/Belfast are names of Europe/London).
    """
    folder = resources.files("tzdata") / "zoneinfo"
    countries = {}
    for line in (folder / "zone.tab").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, _, zone = line.split("\t")[:3]
            countries[zone] = code
    for line in (folder / "tzdata.zi").read_text(encoding="utf-8").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            if link not in countries and target in countries:
                countries[link] = countries[target]
    return countries


def _ascii_digits(text: str) -> str:
    """`text` with every decimal digit of any script (full-width ０, Arabic-Indic ٠) as its ASCII
    digit: `phonenumbers` reads them, but the checks here (a leading 0, a run of digits kept whole)
    compare with ASCII, and would take ０７７００９００８０３ for an international number."""
    return "".join(str(unicodedata.decimal(char)) if char.isdecimal() else char for char in text)


def _valid_here(digits: str, region: str) -> bool:
    """Whether `digits` read in `region` are a valid number that keeps every one of them."""
    try:
        local = phonenumbers.parse(digits, region)
    except NumberParseException:
        return False
    e164 = phonenumbers.format_number(local, PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(local) and e164.endswith(digits)


def _parse(text: str, raw: str, region: str) -> phonenumbers.PhoneNumber:
    """The number in `text`, refused when it has an extension or letters.

    A label before the number ("Mob:", "tel:") is skipped, as `phonenumbers` skips it, and so is a
    note after it, set apart by a space, when the number is whole without it ("07700 900123 (w)",
    "... home", "+44 7700 900123 GB"). Other letters are refused rather than read: `phonenumbers`
    turns three or more into keypad digits (07700 900ABC would be stored as 07700 900222) and drops
    fewer, so the number kept would not be the one written. An extension ("ext 5", "x5",
    ";ext=5") is named as such, not as letters.
    """
    letters = _has_letters(text)
    if letters:
        bare = _NOTE_AFTER.sub("", text)
        if bare != text and not _has_letters(bare) and _whole(bare, region):
            text, letters = bare, False
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhone(raw, "it has letters in it" if letters else _parse_reason(exc)) from None
    if number.extension:
        raise InvalidPhone(raw, "it has an extension, which a text message cannot reach")
    if letters:
        raise InvalidPhone(raw, "it has letters in it")
    return number


# Words of letters at the end, each after a space, perhaps in brackets: "(w)", "M", "home", "(UK)".
_NOTE_AFTER = re.compile(r"(?:\s+\(?[^\W\d_]+\.?\)?)+\s*$")


def _whole(text: str, region: str) -> bool:
    """Whether `text` is a number in use (or one of Ofcom's drama numbers), no digit missing."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) or fictional(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def _has_letters(text: str) -> bool:
    """Whether there are letters from where a number can start (a plus, full-width too, or a digit) on."""
    start = next((at for at, char in enumerate(text) if char in "+\uff0b" or char.isdecimal()), len(text))
    return any(char.isalpha() for char in text[start:])


def _parse_reason(exc: NumberParseException) -> str:
    return {
        NumberParseException.INVALID_COUNTRY_CODE: "the country code is not valid",
        NumberParseException.NOT_A_NUMBER: "it is not a phone number",
        NumberParseException.TOO_SHORT_NSN: "it is too short",
        NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
        NumberParseException.TOO_LONG: "it is too long",
    }.get(exc.error_type, "it is not a phone number")
