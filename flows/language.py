"""Which language a member gets, and which text of a message they see."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping


def normalize(code: Any) -> str | None:
    """'cy-GB' -> 'cy'; None for anything that is not a language code."""
    if not isinstance(code, str):
        return None
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if 2 <= len(primary) <= 3 and primary.isalpha() else None


def choose(languages: tuple[str, ...], default: str, member: Any, community: Any) -> str:
    """The member's language if the flow has it, else the community's, else the default."""
    for candidate in (normalize(member), normalize(community)):
        if candidate in languages:
            return candidate
    return default


def variant_index(count: int, seed: str) -> int:
    """A stable pick among `count` variants (same member, day and step, same pick)."""
    if count <= 1:
        return 0
    digest = hashlib.sha256(seed.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(message: Any, language: str, default: str, seed: str) -> tuple[str | None, str | None]:
    """(text in `language`, text in the default language) of one message value."""
    if isinstance(message, (list, tuple)):
        if not message:
            return None, None
        message = message[variant_index(len(message), seed)]
    if isinstance(message, Mapping):
        fallback = message.get(default)
        if fallback is None and message:
            fallback = next(iter(message.values()))
        chosen = message.get(language, fallback)
        return (str(chosen) if chosen is not None else None,
                str(fallback) if fallback is not None else None)
    if message is None:
        return None, None
    return str(message), None
