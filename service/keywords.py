"""The carrier keywords that work from any state: opt out, opt in, help."""

from __future__ import annotations

import unicodedata

# Twilio's default opt-out words: the design's six, and OPTOUT and REVOKE, which Twilio added
# (it blocks the number on any of them, so Hearth must hear them too).
OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP"})
OPT_IN_WHEN_OPTED_OUT = frozenset({"YES"})
HELP = frozenset({"HELP", "INFO"})

def normalise(body: str) -> str:
    """Upper case without surrounding spaces and punctuation: ' stop! ' -> 'STOP'.

    Letters of compatibility forms are read as the letters they stand for (NFKC): a phone typing
    in a full-width mode sends ＳＴＯＰ, and that is a STOP. One pass from each end, in time linear
    in the text: a pattern for "punctuation at the end" tries again from every character of a long
    run of punctuation, quadratic in its length.
    """
    text = unicodedata.normalize("NFKC", body or "")
    start = next((i for i, c in enumerate(text) if c.isalnum()), len(text))
    end = next((i for i in range(len(text), start, -1) if text[i - 1].isalnum()), start)
    return text[start:end].upper()


def changes_consent(body: str) -> bool:
    """Whether `classify` answers 'opt_out' or 'opt_in' for this message from anyone.

    YES is left out: it opts in only a member who opted out, which is known once their row is read.
    """
    return normalise(body) in _CONSENT_WORDS


_CONSENT_WORDS = OPT_OUT | OPT_IN


def classify(body: str, opted_out: bool) -> str | None:
    """'opt_out', 'opt_in', 'help' or None, for a whole message that is one of these words."""
    word = normalise(body)
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN or (opted_out and word in OPT_IN_WHEN_OPTED_OUT):
        return "opt_in"
    if word in HELP:
        return "help"
    return None
