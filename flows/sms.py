"""SMS arithmetic: GSM-7 or UCS-2, segment counts and cheaper spellings."""
from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Each of these costs two septets (an escape and the character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u2009": " ",
    "\u202f": " ", "\u200b": "", "\u2022": "-", "\t": " ",
}


@dataclass(frozen=True)
class Encoding:
    """How a text would travel: its encoding, length in units and parts."""

    name: str
    units: int
    segments: int


GSM7 = GSM7_BASIC | GSM7_EXTENDED


def is_gsm7(char: str) -> bool:
    """True when `char` can be sent in a GSM-7 message."""
    return char in GSM7


def measure(text: str) -> Encoding:
    """Encoding, length and segment count of `text` as one SMS (Twilio bills segments)."""
    if GSM7.issuperset(text):
        units = len(text) + sum(text.count(c) for c in GSM7_EXTENDED)  # an extended character is two septets
        single, part, name, is_pair = 160, 153, "GSM-7", GSM7_EXTENDED.__contains__
    else:
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2  # UTF-16 code units
        single, part, name, is_pair = 70, 67, "UCS-2", lambda c: ord(c) > 0xFFFF
    if units <= single:
        return Encoding(name, units, 1)
    if units == len(text):
        return Encoding(name, units, math.ceil(units / part))
    # An escape pair or a surrogate pair is never split across two parts.
    segments, used = 1, 0
    for size in (2 if is_pair(c) else 1 for c in text):
        if used + size > part:
            segments, used = segments + 1, 0
        used += size
    return Encoding(name, units, segments)


def non_gsm7(text: str) -> list[str]:
    """The distinct characters of `text` outside GSM-7, in order of appearance."""
    seen: list[str] = []
    for char in text:
        if not is_gsm7(char) and char not in seen:
            seen.append(char)
    return seen


def plain(text: str) -> str:
    """`text` with curly quotes, dashes, ellipses and odd spaces made GSM-7."""
    return "".join(REPLACEMENTS.get(c, c) for c in text)
