"""load_registry(): bundled flows, overrides from extra folders, refusals."""
from __future__ import annotations

from pathlib import Path

from flows import load_registry
from flows.__main__ import main
from flows.registry import BUNDLED_DIR

MENU = "id: {id}\nversion: {version}\ntriggers: {{keywords: [{word}]}}\nsteps:\n  - id: s\n    type: send\n    text: Hi\n"

HANDOVER = "id: {id}\nversion: 1\nsteps:\n  - id: go\n    type: start_flow\n    flow: {target}\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_flows_load_without_any_problem():
    registry, problems = load_registry()
    assert [str(p) for p in problems] == []
    assert sorted(registry.flows) == ["checkin", "help", "meeting_rsvp", "pause", "vote"]
    assert sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml")) == sorted(registry.flows)


def test_an_extra_folder_overrides_by_id_and_adds(tmp_path):
    write(tmp_path, "mine.yaml", MENU.format(id="help", version=7, word="menu"))
    write(tmp_path, "extra.yaml", MENU.format(id="extra", version=1, word="extra"))
    registry, problems = load_registry([tmp_path])
    assert registry.get("help").version == 7
    assert registry.get("extra").source_path == str((tmp_path / "extra.yaml").resolve())
    assert not [p for p in problems if p.is_error]


def test_a_broken_file_is_refused_and_its_problems_returned(tmp_path):
    path = write(tmp_path, "broken.yaml", "id: broken\nversion: 1\nsteps:\n  - id: s\n    type: sned\n")
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert registry.flows == {}
    assert [p.line for p in problems] == [5] and problems[0].file.endswith(path.name)


def test_a_broken_override_leaves_the_bundled_flow(tmp_path):
    write(tmp_path, "help.yaml", "id: help\nversion: 9\nsteps: []\n")
    registry, problems = load_registry([tmp_path])
    assert registry.get("help").version == 1 and problems


def test_start_flow_to_a_missing_flow_is_refused(tmp_path):
    write(tmp_path, "hand.yaml", "id: hand\nversion: 1\nsteps:\n  - id: go\n    type: start_flow\n    flow: nowhere\n")
    write(tmp_path, "ok.yaml", "id: ok\nversion: 1\nsteps:\n  - id: go\n    type: start_flow\n    flow: hand\n")
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert registry.flows == {}
    messages = [str(p) for p in problems]
    assert any("hand.yaml:4: step 'go': start_flow to a flow that is not loaded: 'nowhere'" in m for m in messages)
    assert any("ok.yaml:4: step 'go': start_flow to a flow that is not loaded: 'hand'" in m for m in messages)


def test_validate_refuses_a_start_flow_to_a_flow_that_is_not_loaded(tmp_path, capsys):
    typo = write(tmp_path, "typo.yaml", HANDOVER.format(id="typo", target="chekin"))
    menu = write(tmp_path, "menu.yaml", HANDOVER.format(id="menu", target="help"))
    assert main(["validate", str(typo), str(menu)]) == 1
    out = capsys.readouterr().out
    assert f"error: {typo}:4: step 'go': start_flow to a flow that is not loaded: 'chekin'" in out
    assert f"ok: {menu}: flow 'menu'" in out and f"ok: {typo}" not in out  # help is bundled: the app loads it too
    assert main(["validate", str(menu)]) == 0


def test_a_shared_keyword_is_a_warning(tmp_path):
    write(tmp_path, "a.yaml", MENU.format(id="a", version=1, word="hello"))
    write(tmp_path, "b.yaml", MENU.format(id="b", version=1, word="HELLO"))
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert sorted(registry.flows) == ["a", "b"] and registry.match("hello", "en", None).id == "a"
    assert [p.severity for p in problems] == ["warning"] and "also starts 'a'" in problems[0].message


def test_files_that_used_to_raise_are_problems_and_the_rest_still_load(tmp_path):
    long = MENU.format(id="long", version=1, word="long").replace("steps:", "expiry: 99999999999999w\nsteps:")
    write(tmp_path, "long.yaml", long)
    write(tmp_path, "deep.yaml", MENU.format(id="deep", version=1, word="deep") + "x: " + "[" * 500 + "]" * 500 + "\n")
    registry, problems = load_registry([tmp_path])
    assert sorted(registry.flows) == ["checkin", "help", "meeting_rsvp", "pause", "vote"]
    assert sorted(str(p).split(str(tmp_path))[-1] for p in problems) == [
        "/deep.yaml:8: nested more than 50 deep: a flow never needs that",
        "/long.yaml:4: expiry must be at most 366 days"]


def test_a_missing_folder_is_reported(tmp_path):
    registry, problems = load_registry([tmp_path / "nope"])
    assert "help" in registry.flows and "not a folder" in problems[0].message
