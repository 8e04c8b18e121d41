"""Load-time checks of one template: syntax, variables, filters and tags."""
from __future__ import annotations

from jinja2 import TemplateSyntaxError, nodes

from flows import defaults
from flows.scope import Scope
from flows.templating import environment, is_template

_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
_FIXED_KEYS = {"member": defaults.MEMBER_KEYS, "community": defaults.COMMUNITY_KEYS}


def _unknown_names(tree, env) -> set[str]:
    # A flat reading of scope (Jinja's own find_undeclared_variables costs
    # more than the rest of loading): a name set anywhere counts as known.
    loaded, stored = set(), {"loop"}
    for node in tree.find_all(nodes.Name):
        (loaded if node.ctx == "load" else stored).add(node.name)
    return loaded - stored - set(env.globals) - defaults.TEMPLATE_NAMES


def _attribute(node) -> tuple[str, str] | None:
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name, node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.node.name, node.arg.value
    return None


def _attribute_problem(base: str, name: str, scope: Scope) -> str | None:
    if base in _FIXED_KEYS and name not in _FIXED_KEYS[base]:
        known = ", ".join(sorted(_FIXED_KEYS[base]))
        return f"unknown variable '{base}.{name}' (a {base} has: {known})"
    kinds = {"params": "params", "results": "results", "answers": "answers"}
    if base in kinds and name not in getattr(scope, kinds[base]):
        where = {
            "params": "no trigger of this flow passes it",
            "results": "no step of this flow saves it",
            "answers": "no ask step has that id",
        }[base]
        known = scope.describe(kinds[base])
        return f"unknown variable '{base}.{name}': {where} (known: {known})"
    return None


def _arguments_problem(function, node: nodes.Filter) -> str | None:
    """What is wrong with the arguments one of Hearth's filters is given (`local('%A', 'x')`: one
    too many), as its signature says; None when they fit or cannot be known (`*args`). Jinja's
    own filters are left alone: some take what Jinja passes them first, which no signature shows."""
    import inspect

    if node.dyn_args is not None or node.dyn_kwargs is not None:
        return None
    signature = inspect.signature(function)
    if getattr(function, "jinja_pass_arg", None) is not None:  # the context Jinja passes first
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])
    placeholders = [object()] * (1 + len(node.args))  # the value filtered, then each argument
    try:
        signature.bind(*placeholders, **{kw.key: None for kw in node.kwargs})
    except TypeError as exc:
        return f"is given the wrong arguments: {exc}"
    return None


# The filters Hearth adds to Jinja's (flows/templating.py), whose arguments are checked at load.
HEARTH_FILTERS = frozenset({"local", "add_days", "iso", "number", "days", "first_name"})


def check_template(source: str, scope: Scope) -> list[tuple[str, int]]:
    """Messages about `source`, each with its 1-based line inside the template."""
    if not is_template(source):
        return []
    env = environment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [(f"template does not compile: {exc.message}", exc.lineno or 1)]
    found: list[tuple[str, int]] = []
    for name in sorted(_unknown_names(tree, env)):
        known = ", ".join(sorted(defaults.TEMPLATE_NAMES))
        found.append((f"unknown variable '{name}' (known: {known})", 1))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        pair = _attribute(node)
        message = _attribute_problem(*pair, scope) if pair else None
        if message:
            found.append((message, node.lineno))
    for node in tree.find_all(nodes.Filter):
        if node.name not in env.filters:
            found.append((f"template does not compile: no filter named '{node.name}'", node.lineno))
        elif node.name in HEARTH_FILTERS and (wrong := _arguments_problem(env.filters[node.name], node)):
            found.append((f"filter '{node.name}' {wrong}", node.lineno))
    for node in tree.find_all(nodes.Test):
        if node.name not in env.tests:
            found.append((f"template does not compile: no test named '{node.name}'", node.lineno))
    for node in tree.find_all(_FORBIDDEN):
        found.append(("templates may not extend, include or import others", node.lineno))
    for node in tree.find_all(nodes.For):
        if node.recursive:  # each `loop(...)` could run for ever, each level over more items than the last
            found.append(("templates may not use recursive loops", node.lineno))
    return found
