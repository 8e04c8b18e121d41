"""The carrier keywords that work from any state: opt out, opt in, help."""

from __future__ import annotations

import re
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


# Words a member may write around a keyword without changing what they ask: "Stop please", "please
# STOP", "Stop thanks x" (a kiss, as many in the UK end a text). Only these, and only at its ends:
# "stop texting me" and "please don't stop" say something else, and go to the flows.
COURTESY = frozenset({"PLEASE", "PLS", "PLZ", "THANKS", "THANX", "THANKYOU", "THX", "TA", "CHEERS", "X", "XX", "XXX"})
# Twilio's one-word keywords as people also write them, in two.
TWO_WORDS = {("STOP", "ALL"): "STOPALL", ("OPT", "OUT"): "OPTOUT", ("UN", "STOP"): "UNSTOP"}
# Opt-out words that are also everyday answers: alone they opt out (Twilio blocks the number on
# them), but "Cancel please" or "End thanks" more often answers a question (a meeting, a flow) than
# asks to hear nothing more, and the carrier, which matches only the bare word, keeps delivering.
EVERYDAY = frozenset({"CANCEL", "END", "QUIT"})
# A longer text is a sentence, not a keyword with a courtesy or two around it.
LONGEST = 40
_BREAK = re.compile(r"[\W_]+")


def keyword(body: str) -> str:
    """The keyword a message is once the courtesies around it are set aside ('Stop please!' ->
    'STOP', 'opt-out thanks' -> 'OPTOUT'); any other message as `normalise` gives it."""
    text = normalise(body)
    if len(text) > LONGEST or text.isalnum():
        return text
    words = _BREAK.split(text)
    said = len(words)
    while words and words[0] in COURTESY:
        words.pop(0)
    while words and (words[-1] in COURTESY or words[-2:] == ["THANK", "YOU"]):
        del words[-2 if words[-1] == "YOU" else -1:]
    found = TWO_WORDS.get(tuple(words), words[0] if len(words) == 1 else None)
    if found in EVERYDAY and len(words) < said:
        return text
    return found if found in _KEYWORDS else text


def changes_consent(body: str) -> bool:
    """Whether `classify` answers 'opt_out' or 'opt_in' for this message from anyone.

    YES is left out: it opts in only a member who opted out, which is known once their row is read.
    """
    return keyword(body) in _CONSENT_WORDS


_CONSENT_WORDS = OPT_OUT | OPT_IN
_KEYWORDS = OPT_OUT | OPT_IN | OPT_IN_WHEN_OPTED_OUT | HELP


def classify(body: str, opted_out: bool) -> str | None:
    """'opt_out', 'opt_in', 'help' or None, for a whole message that is one of these words (`keyword`)."""
    word = keyword(body)
    if word in OPT_OUT:
        return "opt_out"
    if word in OPT_IN or (opted_out and word in OPT_IN_WHEN_OPTED_OUT):
        return "opt_in"
    if word in HELP:
        return "help"
    return None
