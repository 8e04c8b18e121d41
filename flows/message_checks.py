"""Checks of one message value: templates, translations and SMS cost."""
from __future__ import annotations

from typing import Any, Mapping

from flows import defaults, sms, templating
from flows.scope import Scope
from flows.steps.base import Finding
from flows.template_checks import check_template


def _sms_findings(text: str, path: tuple) -> list[Finding]:
    found = []
    odd = sms.non_gsm7(templating.literal_parts(text))
    if odd:
        shown = " ".join(repr(c) for c in odd)
        fixable = all(c in sms.REPLACEMENTS for c in odd)
        found.append(Finding(
            path,
            f"{shown} outside GSM-7: the whole message goes as UCS-2 "
            f"(70 characters a part, not 160)" + ("; use the plain spelling" if fixable else ""),
            "warning",
            sms.plain(text) if fixable else None,
        ))
    size = sms.measure(templating.sample(text))
    if size.segments > defaults.MAX_SEGMENTS:
        found.append(Finding(
            path,
            f"message is {size.segments} SMS parts ({size.units} {size.name} characters, "
            f"placeholders counted as {defaults.PLACEHOLDER_CHARS}); keep it to {defaults.MAX_SEGMENTS}",
            "warning",
        ))
    return found


def _one_text(text: str, path: tuple, role: str, scope: Scope) -> list[Finding]:
    found = []
    for message, line in check_template(text, scope):
        where = f" (template line {line})" if line > 1 else ""
        found.append(Finding(path, message + where))
    if role == "sms":
        found.extend(_sms_findings(text, path))
    return found


def _translated(value: Any, path: tuple, role: str, scope: Scope) -> list[Finding]:
    languages = set(scope.languages)
    if isinstance(value, Mapping):
        found = []
        have = set(value)
        for missing in sorted(languages - have):
            found.append(Finding(
                path, f"no '{missing}' translation: this message has {', '.join(sorted(have))}; "
                f"the flow declares {', '.join(scope.languages)}"))
        for extra in sorted(have - languages):
            found.append(Finding(
                path + (extra,), f"'{extra}' is not one of the flow's languages "
                f"({', '.join(scope.languages)}): add it to 'languages' or remove it"))
        for lang, text in value.items():
            found.extend(_one_text(str(text), path + (lang,), role, scope))
        return found
    found = _one_text(str(value), path, role, scope)
    if len(languages) > 1:
        others = ", ".join(l for l in scope.languages if l != scope.default_language)
        found.append(Finding(
            path, f"not translated: members who read {others} get the "
            f"{scope.default_language} text", "warning"))
    return found


def message_findings(value: Any, role: str, scope: Scope) -> list[Finding]:
    """Findings for one message (text, translations map or list of variants)."""
    if role == "template":
        return [Finding((), m + (f" (template line {n})" if n > 1 else ""))
                for m, n in check_template(str(value), scope)]
    if isinstance(value, (list, tuple)):
        found = []
        for index, variant in enumerate(value):
            found.extend(_translated(variant, (index,), role, scope))
        return found
    return _translated(value, (), role, scope)
