"""fold() and tokens(): how member text is compared with words in flows."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'"})
_TOKEN = re.compile(r"\w+(?:['\-]\w+)*")


def _is_edge_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in "PS"


def fold(text: str) -> str:
    """Casefold, strip accents, squeeze spaces and trim edge punctuation."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    # A flow's own words (keywords, cases, options) are folded at every text: kept once folded.
    return _fold_word(text) if len(text) <= _SHORT else _fold(text)


_SHORT = 40


@lru_cache(maxsize=4096)
def _fold_word(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    if text.isascii():
        folded = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        folded = "".join(c for c in decomposed if not unicodedata.combining(c))
        folded = folded.casefold().translate(_QUOTES)
    folded = " ".join(folded.split())
    start, end = 0, len(folded)
    while start < end and _is_edge_junk(folded[start]):
        start += 1
    while end > start and _is_edge_junk(folded[end - 1]):
        end -= 1
    return folded[start:end]


def tokens(text: str, limit: int = 40) -> list[str]:
    """The folded words of `text` (at most `limit` of them)."""
    found = []
    for match in _TOKEN.finditer(fold(text)):
        found.append(match.group(0))
        if len(found) >= limit:
            break
    return found
