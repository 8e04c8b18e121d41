"""Keyword triggers: first word, any case, accents folded, synonyms, interrupts."""
from __future__ import annotations

import pytest

from flows import Registry, fold, keyword_params, load_flow_text


def make(flow_id: str, keywords: str, interrupts: bool = False, extra: str = ""):
    text = (f"id: {flow_id}\nversion: 1\nlanguages: [en, cy]\ninterrupts: {str(interrupts).lower()}\n"
            f"triggers:\n  keywords: {keywords}\n{extra}steps:\n  - id: done\n    type: end\n")
    flow, problems = load_flow_text(text)
    assert flow is not None, problems
    return flow


@pytest.fixture
def flows():
    return Registry([
        make("pause", "{en: [pause, holiday], cy: [saib]}", interrupts=True),
        make("checkin", "{en: [checkin, check-in]}"),
        make("cafe", "[café]", extra="  catch_all: true\n"),
    ])


@pytest.mark.parametrize("text,expected", [
    ("PAUSE", "pause"), ("pause 7", "pause"), ("  Pause!! 7", "pause"), ("HOLIDAY", "pause"),
    ("saib 3", "pause"), ("Check-in", "checkin"), ("CHECKIN please", "checkin"), ("check in", "checkin"),
    ("CAFE", "cafe"), ("Café", "cafe"), ("cafe\u0301", "cafe"),
    ("hello", None), ("", None), ("   ", None), ("7 pause", None), ("pauses", None), ("😀", None),
])
def test_match_first_word(flows, text, expected):
    found = flows.match(text, "en", None)
    assert (found.id if found else None) == expected


def test_the_members_language_is_tried_first_then_any(flows):
    assert flows.match("saib", "cy", None).id == "pause"
    assert flows.match("saib", "en", None).id == "pause"
    assert flows.match("pause", None, None).id == "pause"


def test_only_interrupting_flows_match_while_a_flow_is_active(flows):
    active = flows.get("checkin")
    assert flows.match("PAUSE 7", "en", active).id == "pause"
    assert flows.match("checkin", "en", active) is None


@pytest.mark.parametrize("active_id", ["checkin", None])
def test_a_keyword_starts_a_flow_only_alone_or_with_a_number(flows, active_id):
    active = flows.get(active_id) if active_id else None
    assert flows.match("pause 7 days", "en", active).id == "pause"
    assert flows.match("Pause!", "en", active).id == "pause"
    assert flows.match("HOLIDAY 14", "en", active).id == "pause"
    assert flows.match("pause for a while please", "en", active) is None
    assert flows.match("Holiday was awful, feeling really low", "en", active) is None


def test_catch_all_and_scheduled():
    scheduled = make("daily", "[daily]", extra="  schedule: {every: day, at: \"10:00\"}\n")
    registry = Registry([scheduled, make("menu", "[menu]", extra="  catch_all: true\n")])
    assert registry.catch_all.id == "menu"
    assert [f.id for f in registry.scheduled()] == ["daily"]
    assert Registry([scheduled]).catch_all is None


@pytest.mark.parametrize("text,expected", [
    ("Ça VA", "ca va"), ("  ¡Hola!  ", "hola"), ("Nôl", "nol"), ("ŵyr", "wyr"),
    ("it\u2019s", "it's"), ("STRASSE", "strasse"), ("Straße", "strasse"), ("...", ""), ("a  b", "a b"),
])
def test_fold(text, expected):
    assert fold(text) == expected


def test_keyword_params():
    assert keyword_params("PAUSE 7") == {"text": "PAUSE 7", "keyword": "pause", "args": "7"}
    assert keyword_params("  Back!  ") == {"text": "  Back!  ", "keyword": "back", "args": ""}
    assert keyword_params("") == {"text": "", "keyword": "", "args": ""}


def test_bundled_keywords(registry):
    checkin = registry.get("checkin")
    assert registry.match("PAUSE 7", "en", checkin).id == "pause"
    assert registry.match("back", "en", checkin).id == "pause"
    assert registry.match("Back pain is bad today", "en", checkin) is None
    assert registry.match("Break up with my partner last night", "en", None) is None
    assert registry.match("BACK", "en", None).id == "pause"
    assert registry.match("menu", "en", checkin).id == "help"
    assert registry.match("CHECKIN", "en", None).id == "checkin"
    assert registry.match("saib 3", "cy", None).id == "pause"
    assert registry.catch_all.id == "help"
    assert [f.id for f in registry.scheduled()] == ["checkin"]
