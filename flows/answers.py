"""Reading a member's answer: choices (numbers, words, phrases), numbers, text.

A choice is read when the whole folded text is one of its words, or the
first word is a number it accepts, or the words/phrases found in the text
all belong to that one choice and none is negated ("not good", "definitely not").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from flows.folding import fold, tokens

_SCORE = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
_NOT_AFTER = frozenset({"not", "never"})


def _negates_before(words: list[str], at: int) -> bool:
    """Whether words[at], just after an answer, takes it back: "not" or "never" ("definitely
    not"), or a "no" that ends the text or comes before another negation ("Fine? No.", "well, no,
    not really"); not a "no" before something else ("Good, no complaints")."""
    word = words[at]
    if word in _NOT_AFTER:
        return True
    return word == "no" and (at + 1 == len(words) or words[at + 1] in NEGATIONS)
# Words around a whole answer that leave it whole: "2 please", "option 2", "I vote 2".
_AROUND = frozenset("please pls thanks thank you option number vote for i my is".split())
NEGATIONS = frozenset(
    "not no never isnt isn't dont don't didnt didn't wasnt wasn't arent aren't"
    " cant can't cannot nid ddim".split()
)
YES_WORDS = {
    "en": ["yes", "y", "yeah", "yea", "yep", "yup", "ya", "sure", "ok", "okay", "aye",
           "yes please", "of course", "definitely"],
    "cy": ["ie", "do", "oes", "ydw", "ydy", "ydyn", "gwnaf", "iawn"],
}
NO_WORDS = {
    "en": ["no", "n", "nope", "nah", "no thanks", "not really", "never"],
    "cy": ["na", "nac", "naddo", "nage", "dim", "nac ydw"],
}
NUMBER_WORDS = {
    w: n for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}


def word_list(words: Any) -> list[str]:
    """Folded words from a list, or from a map of language to list."""
    if isinstance(words, Mapping):
        return [fold(str(w)) for group in words.values() for w in group or ()]
    return [fold(str(w)) for w in words or ()]


@dataclass(frozen=True)
class Choice:
    """One readable answer: its value, category, route and words."""

    value: Any
    category: str | None
    next: str | None
    words: tuple[str, ...]


class ChoiceReader:
    """Matches text against a set of choices."""

    def __init__(self, choices: Iterable[Choice], numbers_first: bool = False):
        # With `numbers_first` a number counts only at the start of a message ("2", "2 please"):
        # numbered options, where "back in 2 hours" is no vote for option 2.
        self.choices, self.numbers_first = tuple(choices), numbers_first
        self.exact: dict[str, int] = {}
        self.clashes: list[tuple[str, int, int]] = []
        for index, choice in enumerate(self.choices):
            for word in choice.words:
                if not word:
                    continue
                if word in self.exact and self.exact[word] != index:
                    self.clashes.append((word, self.exact[word], index))
                self.exact.setdefault(word, index)
        self.phrases = sorted(
            ((tuple(w.split()), i) for w, i in self.exact.items() if not (numbers_first and w.isdecimal())),
            key=lambda p: -len(p[0]),
        )

    def read(self, text: str, whole: bool = False) -> Choice | None:
        """The choice `text` means, or None when it is unclear. With `whole`, only a message that is
        one choice and nothing else ("2", "The beach!"): what a question nobody is asking now
        takes, so "back in 2 hours" is not a vote for 2."""
        folded = fold(text)
        if folded in self.exact:
            return self.choices[self.exact[folded]]
        if whole:
            return self._whole(folded)
        if self.numbers_first and (named := self._whole(folded)) is not None:
            return named  # "option 2", "I vote 2"
        # "I feel 5/10" is not 5 on a scale of 1 to 5 ("5/5" is; "14/11" and "24/7" are no scores).
        scales = {scale for _, scale in _SCORE.findall(folded) if scale not in self.exact}
        if scales & {"10", "100"} or (scales and _SCORE.fullmatch(folded)):
            return None
        words = tokens(folded)
        if not words:
            return None
        if words[0].isdecimal() and words[0] in self.exact:
            return self.choices[self.exact[words[0]]]
        covered = [False] * len(words)
        starts: list[tuple[int, int, int]] = []
        for phrase, index in self.phrases:
            size = len(phrase)
            for at in range(len(words) - size + 1):
                if not any(covered[at:at + size]) and tuple(words[at:at + size]) == phrase:
                    covered[at:at + size] = [True] * size
                    starts.append((at, size, index))
        for at, size, _ in starts:
            # A negation just before a phrase ("not coming"), or a "not" just after it ("definitely
            # not"), leaves the answer unclear, unless another phrase takes it in ("no, not really").
            # A "no" after one negates what follows it: "Good, no complaints" is good.
            before = [b for b in range(max(0, at - 2), at) if words[b] in NEGATIONS]
            after = [a for a in range(at + size, min(len(words), at + size + 2)) if _negates_before(words, a)]
            if any(not covered[b] for b in before + after):
                return None
        found = {index for _, _, index in starts}
        return self.choices[found.pop()] if len(found) == 1 else None


    def _whole(self, folded: str) -> Choice | None:
        """The one choice a message names with nothing else but politeness ("2 please", "option
        two"), or None."""
        rest = [word for word in tokens(folded) if word not in _AROUND]
        if len(rest) != 1:
            return None
        word = str(NUMBER_WORDS[rest[0]]) if rest[0] in NUMBER_WORDS else rest[0]
        return self.choices[self.exact[word]] if word in self.exact else None


def yes_no_choices(on_yes: str | None, on_no: str | None) -> list[Choice]:
    """The built-in yes and no choices, in every language Hearth knows."""
    return [
        Choice("yes", "yes", on_yes, tuple(word_list(YES_WORDS))),
        Choice("no", "no", on_no, tuple(word_list(NO_WORDS))),
    ]


def options_choices(options: Any, target: str | None) -> list[Choice]:
    """Choices numbered 1.. from a list of option texts (e.g. params.options)."""
    if not isinstance(options, (list, tuple)):
        return []
    return [
        Choice(str(option), None, target, (str(n), fold(str(option))))
        for n, option in enumerate(options[:50], start=1)
    ]


def read_number(text: str, low: float | None, high: float | None) -> int | None:
    """The first whole number in `text` (digits or a word) if within range."""
    for word in tokens(text, limit=12):
        if word.isdecimal() and word.isascii() and len(word) <= 9:
            number = int(word)
        elif word in NUMBER_WORDS:
            number = NUMBER_WORDS[word]
        else:
            continue
        if (low is None or number >= low) and (high is None or number <= high):
            return number
        return None
    return None


def is_skip(text: str, skip_words: frozenset[str]) -> bool:
    """True when the whole of `text` is one skip word or phrase ("SKIP", "no thanks").

    Only the whole message counts: "No point" or "Nah, suicidal" starts with a skip word
    but says something, and is kept as the answer.
    """
    return fold(text) in skip_words or " ".join(tokens(text)) in skip_words
