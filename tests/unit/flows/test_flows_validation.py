"""Each load-time error and warning names the right file, line and step."""
from __future__ import annotations

import pytest

from flows import FlowError, Problem, load_flow_text

ASK = """\
  - id: q
    type: ask
    text: Reply 1 or 2
    answer: choice
    choices:
      - {value: 1, next: done}
      - {value: 2, next: done}
    unreadable: {next: done}
    no_answer: {after: 1h, next: done}
    voice: {say: Press 1 or 2}
  - id: done
    type: end
"""


def flow(steps: str, head: str = "") -> str:
    return f"id: t\nversion: 1\n{head}steps:\n{steps}"


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def problems(text: str, severity: str | None = None) -> list[Problem]:
    found = load_flow_text(text, "flows/test.yaml")[1]
    return [p for p in found if severity is None or p.severity == severity]


def expect(text: str, marker: str, step: str | None, words: str, severity: str = "error") -> Problem:
    """Exactly the problem asked for exists, at the marker's line and step."""
    found = problems(text, severity)
    hits = [p for p in found if words in p.message]
    assert hits, f"no {severity} containing {words!r}; got {[str(p) for p in found]}"
    problem = hits[0]
    assert (problem.file, problem.line, problem.step) == ("flows/test.yaml", line_of(text, marker), step), str(problem)
    if severity == "error":
        assert load_flow_text(text)[0] is None
    return problem


def test_a_good_flow_has_no_problems():
    flow_, found = load_flow_text(flow(ASK), "flows/test.yaml")
    assert flow_ is not None and found == []


def test_problem_text_names_file_line_and_step():
    problem = Problem("flows/bundled/checkin.yaml", 42, "ask_mood", "oops")
    assert str(problem) == "flows/bundled/checkin.yaml:42: step 'ask_mood': oops"
    assert str(Problem("f.yaml", None, None, "bad")) == "f.yaml: bad"


def test_flow_error_carries_problems_and_names_the_first():
    found = problems(flow(ASK.replace("type: end", "type: ned")))
    error = FlowError(found)
    assert error.problems == found
    assert str(error).startswith("flows/test.yaml:15: step 'done': unknown step type 'ned'")


def test_yaml_syntax_error_has_a_line():
    text = flow(ASK.replace("      - {value: 2, next: done}", "      - {value: 2, next: done"))
    [problem] = problems(text)
    assert problem.line is not None and "not valid YAML" in problem.message


def test_duplicate_keys_are_refused():
    text = flow(ASK.replace("    text: Reply 1 or 2\n", "    text: Reply 1 or 2\n    text: again\n"))
    expect(text, "text: again", "q", "duplicate key 'text'")
    expect(flow(ASK.replace("    text: Reply 1 or 2\n", "    text: Reply 1 or 2\n    type: send\n")), "type: send", "q",
           "duplicate key 'type'")


def test_a_yaml_error_in_a_step_names_the_step():
    text = flow(ASK.replace("    text: Reply 1 or 2\n", "    text: Reply: 1 or 2\n"))
    expect(text, "text: Reply: 1", "q", "not valid YAML")
    flow_style = flow("  - {id: hi, type: send, text: Hi, next: done}\n  - {id: done, type: end\n")
    expect(flow_style, "{id: done", "done", "not valid YAML")
    head = "id: t\nversion: 1\ndescription: a: b\nsteps:\n" + ASK
    expect(head, "description:", None, "not valid YAML")


@pytest.mark.parametrize("tagged", ["!!int 2a", "!!bool maybe", "!!float abc", "!!timestamp x", '!!int ""'])
def test_a_tagged_value_yaml_cannot_read_is_refused_at_its_line(tagged):
    """Before, PyYAML's ValueError escaped the loader and stopped every process that loads flows."""
    head = f"id: t\nversion: {tagged}\nsteps:\n" + ASK
    [problem] = problems(head)
    assert problem.line == 2 and "not valid YAML" in problem.message and "cannot read" in problem.message


def test_a_key_written_after_a_merge_overrides_the_merged_one():
    """As YAML merge keys mean: a step built on another (`<<: *base`) with its own id."""
    text = flow("  - &base {id: hi, type: send, text: Hi, next: done}\n  - <<: *base\n    id: again\n"
                "  - {id: done, type: end}\n")
    assert [p for p in problems(text, "error") if "duplicate key" in p.message] == []
    twice = flow("  - {id: hi, type: send, text: Hi, text: Hello, next: done}\n  - {id: done, type: end}\n")
    assert any("duplicate key 'text'" in p.message for p in problems(twice))


def test_a_control_character_is_refused_at_its_line():
    text = flow(ASK.replace("    text: Reply 1 or 2\n", "    text: Reply 1\x0c or 2\n"))
    [problem] = problems(text)
    assert problem.line == text.split("\n").index("    text: Reply 1\x0c or 2") + 1
    assert "control character (U+000C)" in problem.message


def test_a_list_is_not_a_flow():
    assert "must be a mapping" in problems("- a\n- b\n")[0].message


def test_unknown_step_type_suggests_the_closest():
    text = flow(ASK.replace("type: end", "type: ned"))
    assert expect(text, "type: ned", "done", "unknown step type 'ned'").suggestion == "end"


@pytest.mark.parametrize("written", ["[ask]", "{ask: 1}"])
def test_a_step_type_that_is_not_a_word_is_refused(written):
    text = flow(ASK.replace("type: end", f"type: {written}"))
    expect(text, f"type: {written}", "done", "unknown step type")


def test_a_version_too_big_to_store_is_refused():
    expect(flow(ASK).replace("version: 1", "version: 2147483648"), "version:", None, "greater than the maximum")
    assert load_flow_text(flow(ASK).replace("version: 1", "version: 2147483647"))[0] is not None


def test_unknown_field_in_a_step():
    text = flow(ASK.replace("    text: Reply", "    txt: Reply"))
    assert expect(text, "txt: Reply", "q", "unknown field 'txt'").suggestion == "text"


def test_unknown_nested_and_top_level_fields():
    expect(flow(ASK.replace("unreadable: {next: done}", "unreadable: {next: done, tires: 2}")),
           "unreadable:", "q", "unknown field 'tires'")
    expect(flow(ASK, head="expiry_mesage: hi\n"), "expiry_mesage", None, "unknown field 'expiry_mesage'")


def test_missing_required_field():
    expect(flow("  - id: hi\n    type: send\n"), "- id: hi", "hi", "missing field 'text'")


def test_bad_duration():
    expect(flow(ASK.replace("after: 1h", "after: 1 hour")), "after: 1 hour", "q", "a duration such as")


def test_an_id_longer_than_forty_characters_is_refused():
    long = "a" * 41
    expect(flow(ASK).replace("id: t\n", f"id: {long}\n", 1), f"id: {long}", None, "is too long")
    expect(flow(ASK.replace("- id: q", f"- id: {long}")),
           f"- id: {long}", long, "is too long")


def test_route_to_a_missing_step():
    expect(flow(ASK.replace("- {value: 2, next: done}", "- {value: 2, next: dnoe}")),
           "value: 2", "q", "route to a step that does not exist: 'dnoe'")


def test_unreachable_step():
    text = flow(ASK + "  - id: orphan\n    type: send\n    text: nobody gets here\n")
    expect(text, "id: orphan", "orphan", "unreachable")


@pytest.mark.parametrize("change,marker,words", [
    (("- {value: 1, next: done}", "- {value: 1}"), "value: 1", "no route for choice '1'"),
    (("    unreadable: {next: done}\n", ""), "- id: q", "no route for an answer it cannot read"),
    (("no_answer: {after: 1h, next: done}", "no_answer: {after: 1h}"), "no_answer:", "no route for no answer"),
])
def test_an_ask_needs_a_route_for_every_outcome(change, marker, words):
    expect(flow(ASK.replace(*change)), marker, "q", words)


def test_yes_no_needs_both_routes():
    text = flow(ASK.replace("    answer: choice\n    choices:\n      - {value: 1, next: done}\n"
                            "      - {value: 2, next: done}\n", "    answer: yes_no\n    on_yes: done\n"))
    expect(text, "answer: yes_no", "q", "no route for no (on_no)")


def test_fields_must_fit_the_answer_kind():
    expect(flow(ASK.replace("    answer: choice\n", "    answer: choice\n    min: 1\n")),
           "min: 1", "q", "'min' only applies to answer: number")


def test_template_that_does_not_compile():
    text = flow("  - id: hi\n    type: send\n    text: \"Hi {{ member.name \"\n")
    expect(text, "text:", "hi", "template does not compile")
    text = flow("  - id: hi\n    type: send\n    text: \"Hi {{ member.name | shout }}\"\n")
    expect(text, "text:", "hi", "no filter named 'shout'")


@pytest.mark.parametrize("template, complaint", [
    ("{{ now | local('%A', 'x') }}", "filter 'local' is given the wrong arguments: too many positional arguments"),
    ("{{ member.name | first_name(2) }}", "filter 'first_name' is given the wrong arguments"),
    ("{{ params.args | number(7, 1, 60, 9) }}", "filter 'number' is given the wrong arguments"),
])
def test_a_filter_given_the_wrong_arguments_is_refused_not_garbled_at_run_time(template, complaint):
    """Refused here, it would otherwise fail in front of every member, who would get nothing."""
    text = flow(f"  - id: hi\n    type: send\n    text: \"See you {template}\"\n")
    expect(text, "text:", "hi", complaint)


@pytest.mark.parametrize("template", ["{{ now | local('%A') }}", "{{ member.name | days(default=7, min=1) }}",
                                      "{{ member.name | first_name | upper }}", "{{ 3.5 | round(1) }}",
                                      "{{ member.name | list | length }}", "{{ member.name | unique | list }}",
                                      "{{ member.name | replace(*member.name) }}"])
def test_filters_given_the_right_arguments_pass(template):
    text = flow(f"  - id: hi\n    type: send\n    text: \"See you {template}\"\n")
    assert [str(p) for p in problems(text, "error")] == []


@pytest.mark.parametrize("template,words", [
    ("{{ membr.name }}", "unknown variable 'membr'"),
    ("{{ member.nmae }}", "unknown variable 'member.nmae'"),
    ("{{ community.phone }}", "unknown variable 'community.phone'"),
    ("{{ params.question }}", "unknown variable 'params.question'"),
    ("{{ results.mood }}", "unknown variable 'results.mood'"),
    ("{{ answers.mood }}", "unknown variable 'answers.mood'"),
])
def test_template_with_an_unknown_variable(template, words):
    text = flow(f"  - id: hi\n    type: send\n    text: \"{template}\"\n")
    expect(text, "text:", "hi", words)


@pytest.mark.parametrize("name", ["lipsum", "range", "cycler", "joiner", "namespace", "dict"])
def test_jinjas_own_globals_are_not_template_names(name):
    text = flow(f"  - id: s\n    type: send\n    text: \"{{{{ {name}() }}}}\"\n")
    expect(text, "text:", "s", f"unknown variable '{name}'")


def test_known_variables_pass():
    text = flow(ASK.replace("    answer: choice", "    result: mood\n    answer: choice")
                + "  - id: hi\n    type: send\n    text: \"{{ results.mood }} {{ answers.q }} "
                  "{{ params.question }} {{ meeting.title }} {{ member.fields.x }} {{ now | local }}\"\n",
                head="triggers: {facilitator: {params: [question]}}\n")
    text = text.replace("  - id: done\n    type: end\n", "") + "  - id: done\n    type: end\n"
    text = text.replace("next: done}\n    voice", "next: done}\n    voice").replace(
        "- {value: 1, next: done}", "- {value: 1, next: hi}")
    assert problems(text, "error") == []


def test_missing_translation():
    text = flow("  - id: hi\n    type: send\n    text: {en: Hello}\n", head="languages: [en, cy]\n")
    expect(text, "text:", "hi", "no 'cy' translation")


def test_translation_in_an_undeclared_language():
    text = flow("  - id: hi\n    type: send\n    text:\n      en: Hello\n      fr: Bonjour\n")
    expect(text, "fr: Bonjour", "hi", "'fr' is not one of the flow's languages")


def test_untranslated_text_in_a_translated_flow_is_a_warning():
    text = flow("  - id: hi\n    type: send\n    text: Hello\n", head="languages: [en, cy]\n")
    expect(text, "text: Hello", "hi", "not translated", "warning")


def test_languages_must_include_the_default():
    expect(flow(ASK, head="language: en\nlanguages: [cy]\n"), "languages:", None, "must include the default")


def test_a_loop_that_never_waits():
    text = flow("  - id: a\n    type: send\n    text: hi\n    next: b\n"
                "  - id: b\n    type: branch\n    on: local.hour\n    cases:\n"
                "      - {between: [0, 23], next: a}\n")
    expect(text, "- id: a", "a", "a loop that never waits for the member: a -> b -> a")


def test_a_loop_through_an_ask_is_fine():
    text = flow(ASK.replace("- {value: 1, next: done}", "- {value: 1, next: again}")
                + "  - id: again\n    type: send\n    text: once more\n    next: q\n")
    assert problems(text, "error") == []


def test_a_message_over_two_segments_is_a_warning():
    text = flow(f"  - id: long\n    type: send\n    text: \"{'word ' * 70}\"\n")
    expect(text, "text:", "long", "3 SMS parts", "warning")


def test_placeholders_count_towards_length():
    text = flow(f"  - id: long\n    type: send\n    text: \"{'x' * 300}{{{{ member.name }}}}\"\n")
    expect(text, "text:", "long", "3 SMS parts", "warning")


def test_characters_outside_gsm7_offer_the_plain_spelling():
    text = flow("  - id: q\n    type: send\n    text: \"It\u2019s ok \u2014 see you\u2026\"\n")
    problem = expect(text, "text:", "q", "outside GSM-7", "warning")
    assert problem.suggestion == "It's ok - see you..."
    assert load_flow_text(text)[0] is not None


def test_duplicate_step_ids():
    text = flow(ASK + "  - id: q  # again\n    type: end\n")
    expect(text, "# again", "q", "step id 'q' is used twice")


def test_the_same_word_for_two_choices():
    text = flow(ASK.replace("- {value: 2, next: done}", "- {value: 2, words: [\"1\"], next: done}"))
    expect(text, "choices:", "q", "'1' is a word for more than one choice")


def test_an_ask_must_say_how_it_sounds_on_a_call():
    expect(flow(ASK.replace("    voice: {say: Press 1 or 2}\n", "")), "text: Reply", "q", "no voice")


def test_voice_keys_must_give_a_readable_answer():
    text = flow(ASK.replace("voice: {say: Press 1 or 2}", "voice: {say: Press 1 or 2, keys: {\"3\": \"3\"}}"))
    expect(text, "voice:", "q", "key 3 gives '3'")


def test_branch_on_something_unknown():
    text = flow("  - id: b\n    type: branch\n    on: results.mood\n    cases:\n      - {equals: 1, next: e}\n"
                "  - id: e\n    type: end\n")
    expect(text, "on: results.mood", "b", "unknown results name 'mood'")


def test_a_branch_case_needs_exactly_one_test():
    text = flow("  - id: b\n    type: branch\n    on: local.hour\n    cases:\n"
                "      - {equals: 1, in: [2], next: e}\n  - id: e\n    type: end\n")
    expect(text, "equals: 1", "b", "a case needs exactly one of")


def between(on: str, bounds: str) -> str:
    return flow(f"  - id: b\n    type: branch\n    on: {on}\n    cases:\n      - {{between: {bounds}, next: e}}\n"
                "  - id: e\n    type: end\n")


@pytest.mark.parametrize("on,bounds", [
    ("local.time", '["22:00", "25:00"]'), ("local.time", '["22:00", 7]'), ("local.time", "[6, 11]"),
    ("local.time", '["22:00", "7:60"]'), ("member.name", '["10:00", "noon"]'), ("local.hour", "[six, 11]"),
    ("local.hour", "[6, true]"),
])
def test_between_needs_two_times_or_two_numbers(on, bounds):
    expect(between(on, bounds), "between:", "b", "between needs two")


@pytest.mark.parametrize("on,bounds", [("local.time", '["22:00", "7:00"]'), ("local.time", '["0:00", "23:59"]'),
                                       ("local.hour", "[6, 11]"), ("local.hour", '["6", 11.5]')])
def test_between_times_and_numbers_load(on, bounds):
    assert load_flow_text(between(on, bounds))[0] is not None


def test_a_wait_needs_a_duration_or_a_time():
    expect(flow("  - id: w\n    type: wait\n"), "- id: w", "w", "a wait needs 'for'")


def test_bad_schedule_time():
    text = flow(ASK, head="triggers:\n  schedule: {every: day, at: \"25:00\"}\n")
    expect(text, "schedule:", None, "local time HH:MM")


def test_zero_durations_are_refused():
    expect(flow(ASK.replace("after: 1h", "after: 0h")), "after: 0h", "q", "no_answer.after must be longer than zero")
    expect(flow("  - id: w\n    type: wait\n    for: 0m\n"), "for: 0m", "w", "longer than zero")


@pytest.mark.parametrize("text,marker,step", [
    (flow(ASK, head="expiry: 99999999999999w\n"), "expiry:", None),
    (flow(ASK, head="expiry: 9999999d\n"), "expiry:", None),
    (flow(ASK, head=f"expiry: {'9' * 5000}w\n"), "expiry:", None),
    (flow(ASK.replace("after: 1h", "after: 367d")), "after: 367d", "q"),
    (flow(ASK.replace("unreadable: {next: done}", "unreadable: {next: done}\n    reminder: {after: 53w}")),
     "after: 53w", "q"),
    (flow("  - id: w\n    type: wait\n    for: 999999999999999d\n"), "for: 9", "w"),
])
def test_durations_over_a_year_are_refused(text, marker, step):
    expect(text, marker, step, "must be at most 366 days")


def test_a_year_is_the_longest_duration():
    assert load_flow_text(flow(ASK.replace("after: 1h", "after: 366d"), head="expiry: 52w2d\n"))[0] is not None


@pytest.mark.parametrize("nested,marker", [
    ("x: " + "[" * 500 + "]" * 500, "x: [["), ("x:\n  " + "- " * 500 + "1", "- - -"),
    ("x: " + "[" * 40000 + "]" * 40000, "x: [["), ("x: " + "{a: " * 500 + "1" + "}" * 500, "x: {a"),
    ("x: &a [*a]", "x: &a"),
    ("a: &a " + "[" * 30 + "1" + "]" * 30 + "\nx: " + "[" * 30 + "*a" + "]" * 30, "a: &a"),  # the anchor's line
])
def test_a_file_nested_too_deep_is_refused_with_its_line(nested, marker):
    expect(flow(ASK, head=nested + "\n"), marker, None, "nested more than 50 deep")


def _laughs(levels: int) -> str:
    """Each anchor a list of ten aliases to the one before: a few hundred bytes that stand for 10**levels values."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines)


def test_aliases_that_expand_past_what_a_flow_needs_are_refused_with_a_line():
    """Nine levels (614 bytes) would take some 16 GB to build; it is refused before it is built."""
    text = flow(ASK, head=_laughs(9) + "\n")
    expect(text, "l4: &l4", None, "aliases expand to more than 20000 values")


def test_a_file_too_big_without_aliases_is_not_said_to_have_them():
    steps = "".join(f"  - {{id: s{i}, type: send, text: hi}}\n" for i in range(7000))
    found = [str(p) for p in problems(flow(steps), "error")]
    assert any("it holds more than 20000 values: a flow never needs that" in p for p in found), found[:3]
    assert not any("aliases" in p for p in found)


def test_a_few_aliases_are_still_read():
    from flows.yaml_source import parse_yaml

    tree = parse_yaml(_laughs(3))  # 11,111 values once expanded
    assert len(tree["l3"]) == 10 and len(tree["l3"][9][9][9]) == 10


def test_a_keyword_that_can_never_match():
    expect(flow(ASK, head="triggers:\n  keywords: {en: [ok, \"a.b\"]}\n"), "keywords:", None, "'a.b' can never match")


def test_keywords_are_single_words():
    expect(flow(ASK, head="triggers:\n  keywords: [check in]\n"), "keywords:", None, "one word")


def test_a_tab_used_to_indent_is_named():
    found = [str(p) for p in problems("id: t\nversion: 1\nsteps:\n\t- id: a\n\t  type: end\n", "error")]
    assert found == ["flows/test.yaml:4: step 'a': not valid YAML: a tab where YAML needs spaces:"
                     " indent with spaces only"]


def test_a_bad_step_id_is_explained_once():
    found = [str(p) for p in problems(flow("  - id: Bad-Id\n    type: end\n"), "error")]
    assert found == ["flows/test.yaml:4: step 'Bad-Id': 'id' should be lower-case letters, digits and _, starting"
                     " with a letter, at most 40, not 'Bad-Id'"]


def test_two_steps_of_one_id_are_not_also_called_a_loop():
    found = [str(p) for p in problems(flow("  - {id: a, type: send, text: hi}\n  - {id: a, type: end}\n"), "error")]
    assert found == ["flows/test.yaml:5: step 'a': step id 'a' is used twice"]


def test_a_quote_left_open_is_named_where_it_opens_not_at_the_end_of_the_file():
    text = flow(ASK.replace("    text: Reply 1 or 2\n", '    text: "Reply 1 or 2\n'))
    [problem] = problems(text, "error")
    assert problem.line == text.splitlines().index('    text: "Reply 1 or 2') + 1
    assert problem.message == "not valid YAML: a quote opened on this line is never closed"


def test_a_bracket_left_open_names_the_line_it_opened_on():
    text = flow(ASK.replace("      - {value: 2, next: done}", "      - {value: 2, next: done"))
    [problem] = problems(text, "error")
    opened = text.splitlines().index("      - {value: 2, next: done") + 1
    assert problem.line == opened + 1 and f"while parsing a flow mapping from line {opened}" in problem.message

    at_the_end = "id: t\nversion: 1\nsteps:\n  - id: a\n    type: end\ntags: [a, b\n"
    [problem] = problems(at_the_end, "error")
    assert problem.line == 6, problem  # the bracket's line: the file has no line 7
    assert "while parsing a flow sequence" in problem.message


def test_a_file_that_is_not_utf8_is_named_with_its_line_and_column(tmp_path):
    from flows.loader import load_flow_file

    path = tmp_path / "cafe.yaml"
    path.write_bytes(flow(ASK).replace("Reply 1 or 2", "Caf\xe9 1 or 2").encode("latin-1"))
    flow_, [problem] = load_flow_file(path)
    assert flow_ is None
    assert problem.line == flow(ASK).splitlines().index("    text: Reply 1 or 2") + 1
    assert problem.message == "not UTF-8: byte 0xe9 at column 14 (save the file as UTF-8)"


def test_a_recursive_loop_in_a_template_is_refused_when_the_flow_loads():
    """Each `loop(...)` can go over more items than the one before, for ever."""
    loop = "{% for c in member.name recursive %}{{ loop(c * 2) }}{% endfor %}"
    text = flow(f"  - id: hi\n    type: send\n    text: \"{loop}\"\n")
    expect(text, "text:", "hi", "templates may not use recursive loops")


@pytest.mark.parametrize("escape", ["\\0", "\\x00", "\\u0000"])
def test_a_nul_written_as_an_escape_is_refused_at_its_line(escape):
    """PostgreSQL cannot store a NUL: a text or alert holding one would fail as a member's text is answered."""
    text = flow(ASK.replace("    text: Reply 1 or 2\n", f'    text: "Reply 1{escape} or 2"\n'))
    [problem] = problems(text)
    assert (problem.line, problem.step) == (line_of(text, "Reply 1"), "q")
    assert "NUL character" in problem.message
    alert = flow(f'  - {{id: a, type: alert, severity: low, summary: "x{escape}"}}\n')
    assert "NUL character" in problems(alert)[0].message
