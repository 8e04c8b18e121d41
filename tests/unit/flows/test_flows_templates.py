"""Templates, the local() filter, translations and the fall-backs that keep sending."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from .flows_testkit import make_context

from flows import RaiseAlert, Send, load_flow_text, start
from flows import templating
from flows.clock import format_local
from flows.exceptions import TemplateFailure
from flows.language import choose, select


def sent(text_yaml: str, head: str = "", params=None, **context) -> list[str]:
    flow, problems = load_flow_text(
        f"id: t\nversion: 1\n{head}steps:\n  - id: s\n    type: send\n    text: {text_yaml}\n")
    assert flow is not None, [str(p) for p in problems]
    outcome = start(flow, make_context(**context), params or {})
    return [e.text for e in outcome.events if isinstance(e, Send)]


@pytest.mark.parametrize("fmt,expected", [
    ("%A %-d %B at %H:%M", "Tuesday 7 April at 10:30"),
    ("%a %-d %b %-I:%M%p", "Tue 7 Apr 10:30am"),
    ("%d/%m/%Y", "07/04/2026"),
])
def test_local_format_is_in_the_community_zone_and_locale_free(fmt, expected):
    moment = datetime(2026, 4, 7, 9, 30, tzinfo=timezone.utc)
    assert format_local(moment, fmt, "Europe/London") == expected


def test_local_filter_over_iso_text_in_summer_and_winter():
    head = "triggers: {facilitator: {params: [at]}}\n"
    text = "\"{{ params.at | local('%H:%M') }}\""
    assert sent(text, head, {"at": "2026-07-01T17:00:00Z"}) == ["18:00"]
    assert sent(text, head, {"at": "2026-12-01T17:00:00+00:00"}) == ["17:00"]
    assert sent(text, head, {"at": "not a time"}) == ["not a time"]
    assert sent(text, head, {}) == []


def test_a_bad_timezone_falls_back_to_utc():
    assert sent("\"{{ now | local('%H:%M') }}\"", community={"timezone": "Mars/Olympus"}) == ["09:00"]


def test_filters_number_add_days_iso_first_name():
    head = "triggers: {keywords: [pause]}\n"
    text = "\"{{ params.args | number(7, 1, 60) }} {{ now | add_days(2) | iso }} {{ member.name | first_name }}\""
    assert sent(text, head, {"text": "pause 99"}, member={"name": "Jo Bloggs"}) == [
        "60 2026-03-04T09:00:00+00:00 Jo"]
    assert sent(text, head, {"text": "pause"}, member={"name": None}) == ["7 2026-03-04T09:00:00+00:00"]


@pytest.mark.parametrize("now, days, expected", [
    (datetime(2026, 3, 28, 9, 30, tzinfo=timezone.utc), 1, "2026-03-29T08:30:00+00:00"),  # into summer time
    (datetime(2026, 10, 24, 8, 30, tzinfo=timezone.utc), 1, "2026-10-25T09:30:00+00:00"),  # out of it
    (datetime(2026, 3, 21, 9, 30, tzinfo=timezone.utc), 7, "2026-03-28T09:30:00+00:00"),
])
def test_add_days_keeps_the_local_time_of_day_across_a_clock_change(now, days, expected):
    # PAUSE 1 at 09:30 on a Saturday ends at 09:30 on Sunday in London, before Sunday's check-in.
    text = f"\"{{{{ now | add_days({days}) | iso }}}} {{{{ now | add_days({days}) | local('%H:%M') }}}}\""
    local = f"{now.astimezone(ZoneInfo('Europe/London')):%H:%M}"
    assert sent(text, now=now, community={"timezone": "Europe/London"}) == [f"{expected} {local}"]


def test_missing_values_render_empty_rather_than_fail():
    assert sent("\"Hi {{ meeting.place.room }}{{ member.fields.nothing }}!\"") == ["Hi !"]


def test_the_sandbox_refuses_unsafe_attributes_and_degrades():
    out = sent("\"x{{ meeting.__class__.__mro__ }}{{ meeting.items.__globals__ }}y\"")
    assert out == ["xy"] or out == ["x y"]


def test_a_text_that_fails_for_this_members_data_is_not_sent_and_the_failure_names_file_and_step(caplog):
    """A sum over a field only some members have: before, the member got the text with its tags
    stripped ("You have days left"), which says something else; now nothing, and the error is
    logged as the flow's problem, as a refused file's are."""
    head = "triggers: {facilitator: {params: [n]}}\n"
    text = "\"You have {{ member.fields.days - 1 }} days left, {{ member.name }}.\""
    assert sent(text, head, member={"name": "Jo", "fields": {"days": 3}}) == ["You have 2 days left, Jo."]
    assert sent(text, head, member={"id": "m7", "name": "Jo", "fields": {}}) == []
    assert sent("\"Total: {{ params.n // 0 }} items\"", head, {"n": 3}) == []
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 2
    assert failures[0].getMessage() == (
        "flow <string>:5: step 's': template failed for member m7: UndefinedError: 'dict object' has no"
        " attribute 'days'; the message was not sent")


def test_a_translation_that_fails_gives_the_default_language_text_whole(caplog):
    head = "languages: [en, cy]\n"
    text = "{en: \"Hi {{ member.name }}\", cy: \"Helo {{ member.fields.n + 1 }}\"}"
    assert sent(text, head, member={"name": "Jo", "language": "cy", "fields": {}}) == ["Hi Jo"]
    assert "sent in the flow's default language instead" in caplog.text


def test_an_alert_whose_summary_fails_still_goes_and_says_so(caplog):
    flow, _ = load_flow_text("id: t\nversion: 1\nsteps:\n  - id: tell\n    type: alert\n    severity: high\n"
                             "    summary: \"{{ member.name }} is {{ member.fields.age + 1 }}\"\n")
    alerts = [e for e in start(flow, make_context(member={"name": "Jo", "fields": {}})).events
              if isinstance(e, RaiseAlert)]
    assert [(a.severity, a.summary) for a in alerts] == [
        ("high", "An alert from t (step tell); its summary could not be written.")]
    assert "step 'tell': template failed" in caplog.text


@pytest.mark.parametrize("member,community,expected", [
    ("cy", "en", "cy"), ("CY-gb", "en", "cy"), ("fr", "cy", "cy"), (None, "fr", "en"), (None, None, "en"),
])
def test_language_choice(member, community, expected):
    assert choose(("en", "cy"), "en", member, community) == expected


def test_translations_and_variants():
    head = "languages: [en, cy]\n"
    assert sent("{en: Hello, cy: Helo}", head, member={"language": "cy"}) == ["Helo"]
    assert sent("{en: Hello, cy: Helo}", head, community={"language": "cy"}) == ["Helo"]
    assert sent("{en: Hello, cy: Helo}", head, member={"language": "fr"}) == ["Hello"]
    assert select([{"en": "A", "cy": "B"}, {"en": "C", "cy": "D"}], "cy", "en", "seed") in (("B", "A"), ("D", "C"))


def test_variants_are_stable_for_a_member_and_day_but_vary():
    picks = {tuple(sent("[one, two, three]", member={"id": f"m{i}"})) for i in range(30)}
    assert len(picks) == 3
    assert sent("[one, two, three]", member={"id": "m5"}) == sent("[one, two, three]", member={"id": "m5"})


def test_sample_and_literal_parts_used_for_checks():
    source = "Hi {{ member.name }}, {{ x | local('%A') }}{% if y %}!{% endif %}"
    assert templating.sample(source) == "Hi xxxxxxxxxx, Wednesday!"
    assert templating.literal_parts(source) == "Hi , !"
    assert templating.strip_tags(source) == "Hi , !"
    # A crisis line is counted at the length of the UK's, not of a name.
    assert templating.sample("Call {{ community.crisis }}.") == "Call Samaritans, call 116 123 (free, 24/7)."


@pytest.mark.parametrize("source", ["{{ 'x' * 300000000 }}", "{{ 300000000 * 'ab' }}", "{{ [1] * 20000 }}",
                                    "{{ 9 ** 999999 }}"])
def test_a_template_cannot_build_a_value_of_unbounded_size(source):
    with pytest.raises(TemplateFailure, match="SecurityError"):
        templating.render(source, {})


@pytest.mark.parametrize("source", ["{{ 'a\\x00b' }}", "{{ 'a%cb' % 0 }}"])
def test_a_template_gives_no_nul_which_postgresql_cannot_store(source):
    assert templating.render(source, {}) == "ab"


def test_ordinary_arithmetic_still_works():
    assert templating.render("{{ '-' * 20 }} {{ 3 * 4 }} {{ 2 ** 10 }} {{ 1.5 * 2 }}", {}) == "-" * 20 + " 12 1024 3.0"


@pytest.mark.parametrize("source", [
    "{{ 'x' * 300000000 }}",
    "{{ 2 ** 1000 }}",
    "{{ ((((9 ** 99) ** 99) ** 99) ** 99) ** 99 > 0 }}",  # each exponent small, the result not
    "{% set seen = [member.name] %}{% for n in seen %}{{ seen.append(n) or '' }}{% endfor %}",  # grows as it loops
    "{{ member.name | center(1000000000) }}",
    "{{ ''.ljust(4000000000) }}",
    "{{ '%0300000000d' | format(1) }}",
    "{{ '%0300000000d' % 1 }}",
    "{{ '{:>300000000}'.format(member.name) }}",
])
def test_a_template_that_would_build_a_huge_value_fails_rather_than_stall_the_process(source):
    """Each of these, before it was refused, took seconds to minutes or gigabytes: the text's
    default-language text is tried instead, else nothing is sent (`TemplateFailure`)."""
    with pytest.raises(TemplateFailure):
        templating.render(source, {"member": {"name": "Ann"}})


@pytest.mark.parametrize("source", [
    "{{ (('x' * 9999) | replace('x', 'x' * 9999)) | length }}",
    "{{ ('x' * 9999).replace('x', 'x' * 9999) | length }}",
    "{{ ([[1] * 9999] * 100) | sum(start=[]) | length }}",
])
def test_a_replacement_or_sum_that_would_build_a_huge_value_is_refused(source):
    """Each was within every other limit and built 100,000,000 characters or items (a second
    replace of that, a million million), or copied millions of items over and over (a sum)."""
    with pytest.raises(TemplateFailure, match="SecurityError"):
        templating.render(source, {})


@pytest.mark.parametrize("source, text", [
    ("{{ 'a-b-c' | replace('-', ', ') }}", "a, b, c"),
    ("{{ 'a-b-c'.replace('-', '', 1) }}", "ab-c"),
    ("{{ [1, 2, 3] | sum }}", "6"),
    ("{{ [{'n': 2}, {'n': 3}] | sum(attribute='n') }}", "5"),
    ("{{ [[1], [2]] | sum(start=[]) }}", "[1, 2]"),
])
def test_replacements_and_sums_of_a_usual_size_work(source, text):
    assert templating.render(source, {}) == text


@pytest.mark.parametrize("source, text", [
    ("{{ '%05.1f' | format(3.14159) }}", "003.1"),
    ("{{ '{:>6}'.format(member.name) }}", "   Ann"),
    ("{{ member.name | center(7) }}", "  Ann  "),
    ("{{ 2 ** 10 }}", "1024"),
    ("Call 07700 900123 {{ '%s' % member.name }}", "Call 07700 900123 Ann"),
])
def test_formats_padding_and_powers_of_a_usual_size_work(source, text):
    assert templating.render(source, {"member": {"name": "Ann"}}) == text


@pytest.mark.parametrize("source, refusal", [
    # 9,000,000 turns of an empty body: seconds of a worker's time, for nothing.
    ("{% for a in 'x' * 3000 %}{% for b in 'x' * 3000 %}{% endfor %}{% endfor %}", "loops of more than 1000 items"),
    ("{% for a in member.name * 2000 %}{{ a }}{% endfor %}", "loops of more than 1000 items"),
    # 2,000,000 characters, each turn's text within the repetition limit.
    ("{% for a in 'x' * 200 %}{{ 'y' * 10000 }}{% endfor %}", "a text of more than 10000 characters"),
    ("{% set big %}{% for a in 'x' * 200 %}{{ 'y' * 10000 }}{% endfor %}{% endset %}{{ big | length }}",
     "a text of more than 10000 characters"),
    ("{% for c in [['a']] recursive %}{{ c if c is string else loop(c) }}{% endfor %}", "a recursive loop"),
])
def test_loops_are_limited_in_items_and_in_the_text_they_build(source, refusal):
    """Loops nested in loops, each within the repetition limit, ran 10,000 x 10,000 times or built
    megabytes; all the loops of one render now take 1,000 items at most, and it gives 10,000
    characters at most."""
    with pytest.raises(TemplateFailure, match=f"SecurityError: {refusal}"):
        templating.render(source, {"member": {"name": "Ann"}})


def test_loops_of_a_usual_size_work():
    source = ("{% for o in options %}{{ loop.index }}={{ o }}{% if not loop.last %}, {% endif %}"
              "{% else %}none{% endfor %}")
    assert templating.render(source, {"options": ["a", "b", "c"]}) == "1=a, 2=b, 3=c"
    assert templating.render(source, {"options": []}) == "none"
    assert templating.render("{% for o in nothing.here %}x{% else %}-{% endfor %}", {}) == "-"
    assert templating.render("{% for a in 'x' * 20 %}{% for b in 'x' * 40 %}.{% endfor %}{% endfor %}", {}) == "." * 800


def test_a_send_whose_loops_run_too_long_is_not_sent_and_names_its_file_and_step(caplog):
    text = "\"{% for a in member.name * 400 %}{% for b in member.name * 400 %}{% endfor %}{% endfor %}Hi\""
    assert sent(text, member={"name": "Ann"}) == []
    assert "step 's': template failed for member" in caplog.text and "loops of more than 1000 items" in caplog.text


def test_the_jinja_hearth_requires_has_no_known_way_out_of_its_sandbox():
    """Staff write flow templates, and the sandbox is all that keeps them from running Python: Jinja
    before 3.1.5 let a stored `str.format` escape it (CVE-2024-56326), before 3.1.6 `|attr('format')`
    (CVE-2025-27516). An install over an older Jinja that the requirement still allowed kept it."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    required = [Requirement(line) for line in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    jinja = next(requirement for requirement in required if requirement.name.lower() == "jinja2")
    assert not jinja.specifier.contains("3.1.5") and not jinja.specifier.contains("3.1.4")
    assert jinja.specifier.contains("3.1.6")


@pytest.mark.parametrize("source", [
    "{{ ('{0.__class__.__mro__}'|attr('format'))(member) }}",
    "{% set f = '{0.__class__.__mro__}'.format %}{{ f(member) }}",
    "{{ '{0.__class__.__mro__}'.format_map({'0': member}) }}",
])
def test_str_format_however_it_is_reached_stays_in_the_sandbox(source):
    try:
        rendered = templating.render(source, {"member": {"name": "Alex"}})
    except TemplateFailure:
        return
    assert "class" not in rendered and "object" not in rendered
