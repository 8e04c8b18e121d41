"""The sandbox flow templates render in: Jinja's, immutable, and unable to build a huge value.

Flows are written by a community's staff, and a mistake in one must fail that text (it is not
sent, and the failure is logged), not stall the worker or the clock that renders it, nor take its memory.
"""
from __future__ import annotations

import math
import re

from jinja2 import nodes, pass_context, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The longest text or list a template may build by repetition or padding: far beyond any SMS (a
# message is cut at 1,600 characters), far below what would stall a worker ('x' * 300000000 took
# 2.3 GB).
MAX_REPEATED = 10_000
MAX_EXPONENT = 100
# The most digits a power may have: 9 ** 99 has 95; (9 ** 99) ** 99 would have 9,350.
MAX_DIGITS = 1_000
# String methods whose number arguments are a length to build.
_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
# Widths and precisions in a format: "%0300000000d", "%.5f"; "{:>300000000}".
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\d*)(?:\.(\d*))?")
_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
# The items all the loops of one render may take together: a flow loops over a vote's options or
# the crisis contacts; two loops of 10,000 nested ran 100,000,000 times.
MAX_LOOP_ITEMS = 1_000
# The longest text a render (or a `{% set %}` block, or a macro) may give: an SMS is cut at 1,600.
MAX_RENDERED = 10_000
# The filter every `{% for %}` reads its items through (`FlowSandbox._parse`).
COUNTED = "_counted"


class _RenderContext(Context):
    """One render's context, with the loop items it may still take."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loop_items_left = MAX_LOOP_ITEMS


@pass_context
def counted(context, items):
    """`items` one by one, refused once the render's loops have taken MAX_LOOP_ITEMS."""
    for item in items:
        context.loop_items_left = getattr(context, "loop_items_left", MAX_LOOP_ITEMS) - 1
        if context.loop_items_left < 0:
            raise SecurityError(f"loops of more than {MAX_LOOP_ITEMS} items in all")
        yield item


def _joined(parts) -> str:
    """The parts of a render joined, refused past MAX_RENDERED characters (before the rest are made)."""
    taken, size = [], 0
    for part in parts:
        size += len(part)
        if size > MAX_RENDERED:
            raise SecurityError(f"a text of more than {MAX_RENDERED} characters")
        taken.append(part)
    return "".join(taken)


class FlowSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox (a template cannot grow a list it loops over), whose arithmetic,
    padding and formats cannot build a value of unbounded size."""

    intercepted_binops = frozenset({"*", "**", "%"})
    context_class = _RenderContext
    concat = staticmethod(_joined)

    def _parse(self, source, name, filename):
        """The template's tree, each loop reading its items through the `counted` filter."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, COUNTED, [], [], None, None, lineno=loop.lineno)
        return tree

    def call_binop(self, context, operator: str, left, right):
        """`*`, `**` and `%` as usual, refused past MAX_REPEATED items, MAX_EXPONENT or MAX_DIGITS."""
        if operator == "*":
            sized, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(sized, (str, list, tuple)) and isinstance(times, int) and len(sized) * times > MAX_REPEATED:
                raise SecurityError(f"a repetition of more than {MAX_REPEATED} items")
        elif operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"a power above {MAX_EXPONENT}")
            if _digits(left, right) > MAX_DIGITS:
                raise SecurityError(f"a power of more than {MAX_DIGITS} digits")
        elif isinstance(left, str):
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's own signature
        """A call as usual; padding past MAX_REPEATED characters is refused."""
        if isinstance(getattr(__obj, "__self__", None), str) and __obj.__name__ in _PADDING:
            _check_width(*args)
        if isinstance(getattr(__obj, "__self__", None), str) and __obj.__name__ == "replace" and len(args) >= 2:
            _check_replace(__obj.__self__, *args[:3])
        if isinstance(__obj, LoopContext):  # a recursive loop's `loop(...)`: its items are not counted
            raise SecurityError("a recursive loop")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        """A text's `format` or `format_map`, read when it is looked up: its widths are checked."""
        if getattr(value, "__name__", None) in ("format", "format_map") and isinstance(
                getattr(value, "__self__", None), str):
            _check_format(value.__self__)
        return super().wrap_str_format(value)


def checked_filters(filters: dict) -> dict:
    """Jinja's `format`, `center` and `indent` filters, their widths checked first; `replace`, and
    `sum` (of texts or lists), their results' sizes."""
    jinja = {name: filters[name] for name in ("format", "center", "indent", "replace", "sum")}

    def format_(value, *args, **kwargs):
        """Jinja's `format`."""
        _check_format(str(value))
        return jinja["format"](value, *args, **kwargs)

    def center(value, width=80):
        """Jinja's `center`."""
        _check_width(width)
        return jinja["center"](value, width)

    def indent(value, width=4, *args, **kwargs):
        """Jinja's `indent`."""
        _check_width(width if isinstance(width, int) else len(str(width)))
        return jinja["indent"](value, width, *args, **kwargs)

    @pass_eval_context
    def replace(eval_ctx, value, old, new, count=None):
        """Jinja's `replace`."""
        _check_replace(value, old, new, -1 if count is None else count)
        return jinja["replace"](eval_ctx, value, old, new, count)

    @pass_environment
    def sum_(environment, iterable, attribute=None, start=0):
        """Jinja's `sum`: adding lists or texts copies each total again, so the whole is bounded."""
        values = list(iterable)
        if attribute is not None:
            values = list(map(make_attrgetter(environment, attribute), values))
        if sum(len(v) for v in [start, *values] if isinstance(v, (str, list, tuple))) > MAX_REPEATED:
            raise SecurityError(f"a sum of more than {MAX_REPEATED} items")
        return jinja["sum"](environment, values, None, start)
    return {"format": format_, "center": center, "indent": indent, "replace": replace, "sum": sum_}


def _check_width(*numbers) -> None:
    if any(isinstance(n, int) and n > MAX_REPEATED for n in numbers):
        raise SecurityError(f"padding to more than {MAX_REPEATED} characters")


def _check_replace(text, old, new, count=-1) -> None:
    """Refuse a replacement whose result would pass MAX_REPEATED characters (each 'x' of 10,000 made
    10,000: 100,000,000 characters, and another replace of that a million million)."""
    text, old, new = str(text), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    if len(text) + times * (len(new) - len(old)) > MAX_REPEATED:
        raise SecurityError(f"a replacement giving more than {MAX_REPEATED} characters")


def _check_format(text: str) -> None:
    numbers = [n for found in _PRINTF.findall(text) for n in found if n]
    numbers += [n for spec in _SPEC.findall(text) for n in re.findall(r"\d+", spec)]
    if any(len(number) > 5 or int(number) > MAX_REPEATED for number in numbers):
        raise SecurityError(f"a format wider than {MAX_REPEATED} characters")


def _digits(base, exponent) -> float:
    """How many digits base ** exponent has (0 when it is not a whole power that grows)."""
    if not isinstance(base, int) or not isinstance(exponent, int) or exponent <= 0 or abs(base) < 2:
        return 0
    return exponent * math.log10(abs(base))
