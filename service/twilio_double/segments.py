"""How many SMS segments a body costs: GSM-7 (160, 153 per part) or UCS-2 (70, 67)."""

import math

# GSM 03.38 basic character set (the escape character 0x1B itself is left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape plus the character, two septets.
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def is_gsm7(body: str) -> bool:
    """True when every character of ``body`` fits the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in body)


def encoding(body: str) -> str:
    """``"GSM-7"`` or ``"UCS-2"``: one character outside GSM-7 makes it all UCS-2."""
    return "GSM-7" if is_gsm7(body) else "UCS-2"


def count_segments(body: str) -> int:
    """The number of segments Twilio bills for ``body`` (at least 1)."""
    if is_gsm7(body):
        units = [2 if ch in GSM7_EXTENDED else 1 for ch in body]
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        # UTF-16 code units; a character outside the BMP is a surrogate pair.
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, part = UCS2_SINGLE, UCS2_PART
    total = sum(units)
    if total <= single:
        return 1
    if all(u == 1 for u in units):
        return math.ceil(total / part)
    # An escape sequence or a surrogate pair is never split across two parts.
    segments, used = 1, 0
    for u in units:
        if used + u > part:
            segments, used = segments + 1, 0
        used += u
    return segments
