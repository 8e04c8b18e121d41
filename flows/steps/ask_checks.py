"""Load-time checks for ask steps: fields that fit the kind, routes, voice."""
from __future__ import annotations

from flows.answers import Choice, ChoiceReader, read_number, word_list, yes_no_choices
from flows.durations import duration_problem
from flows.steps.base import Finding


def static_reader(config) -> ChoiceReader | None:
    """The reader for written choices or yes/no; None for other kinds."""
    if config.get("answer") == "yes_no":
        return ChoiceReader(yes_no_choices(config.get("on_yes"), config.get("on_no")))
    if config.get("answer") == "choice" and config.get("choices") is not None:
        return ChoiceReader(
            Choice(c.get("value"), c.get("category"), c.get("next"),
                   (*word_list([c.get("value")]), *word_list(c.get("words"))))
            for c in config["choices"]
        )
    return None


KIND_FIELDS = {
    "choice": ("choices", "choices_from"),
    "number": ("min", "max"),
    "yes_no": ("on_yes", "on_no"),
    "text": ("skip_words", "on_skip"),
}


def _kind_fields(config, kind) -> list[Finding]:
    found = []
    for other, names in KIND_FIELDS.items():
        for name in names:
            if other != kind and name in config:
                found.append(Finding((name,), f"'{name}' only applies to answer: {other}"))
    if kind == "choice" and ("choices" in config) == ("choices_from" in config):
        found.append(Finding(("answer",), "a choice ask needs 'choices' or 'choices_from' (one of them)"))
    if kind == "number" and config.get("min", 0) > config.get("max", float("inf")):
        found.append(Finding(("min",), "min is greater than max"))
    return found


def _routes(config, kind) -> list[Finding]:
    found = []
    fallback = "next" in config

    def _need(path, ok, outcome):
        if not ok and not fallback:
            found.append(Finding(path, f"no route for {outcome}: give it a 'next' (or the step a 'next')"))

    if kind == "choice":
        for i, choice in enumerate(config.get("choices") or ()):
            _need(("choices", i), "next" in choice, f"choice '{choice.get('value')}'")
        if "choices_from" in config and not fallback:
            found.append(Finding(("choices_from",), "no route for the choices: give the step a 'next'"))
    elif kind == "yes_no":
        _need(("answer",), "on_yes" in config, "yes (on_yes)")
        _need(("answer",), "on_no" in config, "no (on_no)")
    elif kind == "text" and "skip_words" in config:
        _need(("skip_words",), "on_skip" in config, "a skipped answer (on_skip)")
    if kind in ("number", "text") and not fallback:
        found.append(Finding(("answer",), "no route for an answer: give the step a 'next'"))
    if "next" not in (config.get("unreadable") or {}) and "text" in config:
        found.append(Finding(("unreadable",) if "unreadable" in config else (),
                             "no route for an answer it cannot read: add unreadable: {next: STEP}"))
    if "next" not in (config.get("no_answer") or {}):
        found.append(Finding(("no_answer",) if "no_answer" in config else (),
                             "no route for no answer: add no_answer: {after: 8h, next: STEP}"))
    return found


def _voice(config, kind, reader) -> list[Finding]:
    voice = config.get("voice")
    if voice is None:
        if "text" in config:
            return [Finding(("text",), "no voice: say how this ask sounds on a call (voice: {say: ...})")]
        return []
    found = []
    for key, value in (voice.get("keys") or {}).items():
        text = str(value)
        if kind in ("choice", "yes_no") and reader is not None:
            readable = reader.read(text) is not None
        elif kind == "number":
            readable = read_number(text, config.get("min"), config.get("max")) is not None
        else:
            readable = True
        if not readable:
            found.append(Finding(("voice", "keys", key), f"key {key} gives '{text}', which this ask cannot read"))
    return found


def _durations(config) -> list[Finding]:
    found = []
    for key in ("reminder", "no_answer"):
        after = (config.get(key) or {}).get("after")
        problem = duration_problem(after) if after is not None else None
        if problem:
            found.append(Finding((key, "after"), f"{key}.after {problem}"))
    return found


def check_ask(config, scope, reader) -> list[Finding]:
    """Every finding for one ask step."""
    kind = config.get("answer")
    found = _kind_fields(config, kind) + _routes(config, kind) + _voice(config, kind, reader)
    found += _durations(config)
    if reader is not None:
        for word, first, second in reader.clashes:
            found.append(Finding(("choices",), f"'{word}' is a word for more than one choice ({first + 1} and {second + 1})"))
    source = config.get("choices_from")
    if source and source.split(".", 1)[1] not in scope.params:
        found.append(Finding(("choices_from",), f"unknown variable '{source}': no trigger of this flow passes it"))
    return found
