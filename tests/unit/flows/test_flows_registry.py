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


def test_start_flow_to_a_flow_without_the_params_it_needs_is_refused(tmp_path):
    """The bundled vote needs a question and options: handed over without them, members would get
    "Community vote: " and no options."""
    write(tmp_path, "bare.yaml", HANDOVER.format(id="bare", target="vote"))
    write(tmp_path, "asks.yaml", HANDOVER.format(id="asks", target="vote")
          + "    params: {question: Film night?, options: [Yes, No]}\n")
    registry, problems = load_registry([tmp_path])
    assert "bare" not in registry.flows and "asks" in registry.flows
    assert [str(p) for p in problems] == [f"{tmp_path / 'bare.yaml'}:4: step 'go': start_flow to 'vote' does not"
                                          " pass what it needs: params.options, params.question"]


def test_validate_refuses_a_start_flow_to_a_flow_that_is_not_loaded(tmp_path, capsys):
    typo = write(tmp_path, "typo.yaml", HANDOVER.format(id="typo", target="chekin"))
    menu = write(tmp_path, "menu.yaml", HANDOVER.format(id="menu", target="help"))
    assert main(["validate", str(typo), str(menu)]) == 1
    out = capsys.readouterr().out
    assert f"error: {typo}:4: step 'go': start_flow to a flow that is not loaded: 'chekin'" in out
    assert f"ok: {menu}: flow 'menu'" in out and f"ok: {typo}" not in out  # help is bundled: the app loads it too
    assert main(["validate", str(menu)]) == 0


def test_validate_reads_each_bundled_file_once(tmp_path, monkeypatch, capsys):
    import flows.loader
    reads = []
    real = flows.loader.load_flow_text
    monkeypatch.setattr(flows.loader, "load_flow_text", lambda text, shown, **kw: reads.append(shown) or real(
        text, shown, **kw))
    menu = write(tmp_path, "menu.yaml", HANDOVER.format(id="menu", target="help"))
    assert main(["validate", str(BUNDLED_DIR / "help.yaml"), str(menu)]) == 0
    assert sorted(reads) == sorted(set(reads)) and len(reads) == len(list(BUNDLED_DIR.glob("*.yaml"))) + 1
    assert main(["validate"]) == 0
    assert len(reads) == 2 * len(list(BUNDLED_DIR.glob("*.yaml"))) + 1


SEND_THEN = "id: {id}\nversion: 1\nsteps:\n  - id: hi\n    type: send\n    text: Hi\n  - id: go\n    type: start_flow\n" \
            "    flow: {target}\n"


def test_a_hand_over_that_comes_back_without_a_wait_is_refused(tmp_path):
    write(tmp_path, "loopy.yaml", SEND_THEN.format(id="loopy", target="loopy"))
    for flow_id, target in (("a", "b"), ("b", "c"), ("c", "a")):
        write(tmp_path, f"{flow_id}.yaml", SEND_THEN.format(id=flow_id, target=target))
    write(tmp_path, "into.yaml", HANDOVER.format(id="into", target="a"))
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert registry.flows == {}
    messages = [str(p).split(str(tmp_path))[-1] for p in problems]
    assert "/loopy.yaml:7: step 'go': start_flow to 'loopy' can come back to 'loopy' without waiting for the" \
           " member: loopy -> loopy" in messages
    assert "/b.yaml:7: step 'go': start_flow to 'c' can come back to 'b' without waiting for the member:" \
           " b -> c -> a -> b" in messages
    assert "/into.yaml:4: step 'go': start_flow to a flow that is not loaded: 'a'" in messages


def test_a_hand_over_loop_that_waits_for_the_member_is_fine(tmp_path):
    write(tmp_path, "a.yaml", SEND_THEN.format(id="a", target="b"))
    write(tmp_path, "b.yaml", "id: b\nversion: 1\nsteps:\n  - id: q\n    type: ask\n    text: Again?\n    answer: text\n"
                              "    next: go\n    unreadable: {next: go}\n    no_answer: {after: 1h, next: go}\n"
                              "    voice: {say: Again?}\n  - id: go\n    type: start_flow\n    flow: a\n")
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert sorted(registry.flows) == ["a", "b"] and problems == []


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


def test_an_override_refused_between_flows_leaves_the_bundled_flow_and_says_so(tmp_path):
    """An override of help whose start_flow names a flow that is not loaded is refused: the bundled
    help goes on answering (it was removed too, so no catch-all was left)."""
    write(tmp_path, "help.yaml", HANDOVER.format(id="help", target="survey"))
    registry, problems = load_registry([tmp_path])
    assert registry.get("help").source_path == str(BUNDLED_DIR / "help.yaml")
    assert registry.catch_all is not None
    shown = [str(p) for p in problems]
    assert any("start_flow to a flow that is not loaded: 'survey'" in p for p in shown), shown
    assert any("refused, so flow 'help' is the one in" in p and "bundled/help.yaml" in p for p in shown), shown


def test_two_files_of_one_flow_in_a_folder_are_warned_of(tmp_path):
    write(tmp_path, "a.yaml", MENU.format(id="mine", version=1, word="aa"))
    write(tmp_path, "b.yaml", MENU.format(id="mine", version=2, word="bb"))
    registry, problems = load_registry([tmp_path], include_bundled=False)
    assert registry.get("mine").version == 2
    assert any("flow 'mine' is defined by more than one file in this folder" in str(p) for p in problems)


def test_validate_says_which_file_is_not_used(tmp_path, capsys):
    write(tmp_path, "help.yaml", MENU.format(id="help", version=7, word="menu"))
    assert main(["validate", str(BUNDLED_DIR), str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bundled/help.yaml: flow 'help'" in out and "(not used:" in out and "help.yaml replaces it)" in out


import pytest  # noqa: E402


@pytest.mark.parametrize("text, flow_id", [
    ("CHECKIN", "checkin"), ("check in", "checkin"), ("Check in please!", "checkin"), ("check-in", "checkin"),
    ("checkin please", "checkin"), ("Pause please", "pause"), ("PAUSE 2 weeks", "pause"),
    ("PAUSE 7 days, I'm away for a while", "pause"), ("menu", "help"),
    ("Back pain today", None), ("Holiday was awful", None), ("pause for a week", None),
    ("pause please I am exhausted today", None), ("check in with my sister later", None),
])
def test_a_keyword_is_a_command_alone_or_with_a_number_or_a_please(text, flow_id):
    registry, _ = load_registry()
    found = registry.match(text, "en")
    assert (found.id if found else None) == flow_id


def test_back_now_answering_a_question_mid_check_in_is_an_answer():
    registry, _ = load_registry()
    assert registry.match("Back now", "en", active=registry.get("checkin")) is None


@pytest.mark.parametrize("text", ["Saib plis", "Nol diolch"])
def test_a_welsh_keyword_with_welsh_politeness_is_a_command(text):
    registry, _ = load_registry()
    found = registry.match(text, "cy")
    assert found is not None and found.id == "pause"


@pytest.mark.parametrize("text, keyword, args", [
    ("check in please", "checkin", "please"), ("Check in 3", "checkin", "3"), ("checkin", "checkin", ""),
    ("PAUSE 7 days", "pause", "7 days"),
])
def test_a_command_starts_its_flow_with_the_keyword_as_the_trigger_has_it(text, keyword, args):
    """A flow that branches on params.keyword must see "checkin" for "check in please"."""
    registry, _ = load_registry()
    flow, params = registry.command(text, "en")
    assert (params["keyword"], params["args"], params["text"]) == (keyword, args, text)


@pytest.mark.parametrize("command", ["validate", "test"])
def test_a_folder_with_no_flow_files_is_an_error_not_a_silent_success(tmp_path, capsys, command):
    """Neither command may print nothing and exit 0 for a folder the service would load nothing from."""
    (tmp_path / "checkin.txt").write_text("id: checkin\n")
    assert main([command, str(tmp_path)]) == 1
    assert "holds no flow files" in capsys.readouterr().out


def test_a_flow_file_whose_name_ends_in_capitals_is_loaded(tmp_path):
    """A community's Checkin.YAML (a Windows editor's name for it) is its check-in: before, the
    service ignored it without a word and ran the bundled check-in instead."""
    bundled = (BUNDLED_DIR / "checkin.yaml").read_text()
    (tmp_path / "Checkin.YAML").write_text(bundled.replace("How are you today?", "Morning! How are you?", 1))
    (tmp_path / "Notes.YML.bak").write_text("not a flow")
    registry, problems = load_registry([tmp_path])
    assert [p for p in problems if p.is_error] == []
    assert Path(registry.get("checkin").source_path).name == "Checkin.YAML"


def test_a_folder_of_flows_that_cannot_be_read_is_a_problem_named_not_a_crash(tmp_path, monkeypatch, capsys):
    """HEARTH_FLOWS_DIR missing, a file, or a folder the service may not list: each is named, and the
    bundled flows run; before, a folder it may not list stopped every process that loads flows."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (tmp_path / "a-file.yaml").write_text("id: x\n")
    real = Path.iterdir

    def iterdir(self):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    registry, problems = load_registry([tmp_path / "missing", tmp_path / "a-file.yaml", locked])
    assert [p.message for p in problems] == ["not a folder of flows (No such file or directory)",
                                             "not a folder of flows (Not a directory)",
                                             "not a folder of flows (Permission denied)"]
    assert registry.get("checkin") is not None
    assert main(["validate", str(locked)]) == 1
    assert f"error: {locked} cannot be read (Permission denied)" in capsys.readouterr().out


def test_a_link_to_a_flow_file_that_is_gone_is_a_problem_named(tmp_path, capsys):
    """A checkin.yaml linking to a file since moved (or a loop of links) is refused with its name,
    as an unreadable file is: before, it was left out without a word and the bundled check-in ran."""
    (tmp_path / "checkin.yaml").symlink_to(tmp_path / "moved" / "checkin.yaml")
    (tmp_path / "loop.yml").symlink_to(tmp_path / "loop.yml")
    registry, problems = load_registry([tmp_path])
    gone, looped = sorted((p for p in problems if p.is_error), key=lambda p: p.file)
    assert gone.file.endswith("checkin.yaml") and "links to" in gone.message and "moved" in gone.message
    assert "No such file or directory" in gone.message
    assert looped.file.endswith("loop.yml") and "Too many levels of symbolic links" in looped.message
    assert registry.get("checkin").source_path == str(BUNDLED_DIR / "checkin.yaml")
    assert main(["validate", str(tmp_path)]) == 1
    assert "checkin.yaml: cannot read the file" in capsys.readouterr().out
