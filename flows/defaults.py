"""Defaults the loader, engine and example runner fall back on."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

EXPIRY = timedelta(days=1)
UNREADABLE_TRIES = 2
# The graph check forbids loops that never wait, so this only guards bugs.
MAX_STEPS_PER_CALL = 200
MAX_SEND_CHARS = 1600
MAX_ANSWER_CHARS = 1600
MAX_SEGMENTS = 2
LANGUAGE = "en"

# Length checks count each {{ placeholder }} as this many characters.
PLACEHOLDER_CHARS = 10
# A Wednesday in September: the longest English day and month names.
SAMPLE_DATETIME = datetime(2026, 9, 30, 18, 30, tzinfo=timezone.utc)

MEMBER_KEYS = frozenset({"id", "name", "language", "channel", "status", "fields"})
# `team`: whether an alert reaches anyone (the community has a facilitator).
COMMUNITY_KEYS = frozenset({"name", "timezone", "language", "help_text", "crisis", "contacts", "team"})
KEYWORD_PARAMS = ("text", "keyword", "args")
TEMPLATE_NAMES = frozenset(
    {"member", "community", "meeting", "params", "results", "answers", "now"}
)

EXAMPLE_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EXAMPLE_MEMBER = {
    "id": "member-1",
    "name": "Sam",
    "language": None,
    "channel": "sms",
    "status": "active",
    "fields": {},
}
EXAMPLE_COMMUNITY = {
    "name": "Oak House",
    "timezone": "Europe/London",
    "language": "en",
    "help_text": "Oak House: call the office on 01632 960000.",
    "crisis": "Samaritans, call 116 123 (free, 24/7)",
    # Every crisis contact, as a text says each: the UK's, as a community has them by default.
    "contacts": ["Samaritans, call 116 123 (free, 24/7)", "Shout, text SHOUT to 85258 (free, 24/7)",
                 "NHS 111, call 111, mental health option (24/7)",
                 "Emergency, call 999 or go to A&E (if a life is at risk)"],
    "team": True,
}
