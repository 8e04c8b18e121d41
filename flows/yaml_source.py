"""Read flow YAML keeping the line of every mapping, key and list item.

The resolver follows YAML 1.2's core schema rather than PyYAML's YAML 1.1:
`yes`, `no`, `on`, `off`, `y`, `n` stay text (they are answers here), `10:00`
stays text (not the base-60 number 600) and dates stay text.
"""
from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import BaseResolver

from flows.yaml_depth import MAX_DEPTH, MAX_NODES, too_big_through_aliases, too_deep, too_deep_through_aliases

try:
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - pure-Python PyYAML
    _Parser = None


class Mapping(dict):
    """A dict that remembers its own line and the line of each key."""

    __slots__ = ("line", "key_lines")


class Sequence(list):
    """A list that remembers its own line and the line of each item."""

    __slots__ = ("line", "item_lines")


class YamlProblem(Exception):
    """The text is not YAML we can read; carries a 1-based line."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _Resolver(BaseResolver):
    pass


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def _key(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class _Constructor(SafeConstructor):
    def construct_object(self, node, deep=False):
        """PyYAML's constructors; a tagged value they cannot read (`!!int 2a`) is refused at its line, as is a
        NUL written as an escape ("\\0"): PostgreSQL cannot store the message or alert holding it."""
        try:
            value = super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            what = repr(node.value) if isinstance(node.value, str) else "this value"
            raise ConstructorError(None, None, f"!!{node.tag.rsplit(':', 1)[-1]} cannot read {what}", node.start_mark)
        if isinstance(value, str) and "\x00" in value:
            raise ConstructorError(None, None, "a NUL character (\\0), which no text may hold", node.start_mark)
        return value

    def construct_lined_map(self, node):
        """A Mapping with lines; a key written twice is refused, one written overrides a merge's (`<<:`)."""
        data = Mapping()
        data.line, data.key_lines = node.start_mark.line + 1, {}
        yield data
        own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
        self.flatten_mapping(node)  # the merged pairs first, then the mapping's own
        merged, written = len(node.value) - own, set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise ConstructorError(None, None, "a key must be plain text", key_node.start_mark)
            key = _key(key)
            if key in written:
                raise ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            written |= {key} if index >= merged else set()
            data[key] = self.construct_object(value_node, deep=True)
            data.key_lines[key] = key_node.start_mark.line + 1

    def construct_lined_seq(self, node):
        """A Sequence with the line of each item."""
        data = Sequence()
        data.line, data.item_lines = node.start_mark.line + 1, []
        yield data
        for child in node.value:
            data.append(self.construct_object(child, deep=True))
            data.item_lines.append(child.start_mark.line + 1)


_Constructor.add_constructor("tag:yaml.org,2002:map", _Constructor.construct_lined_map)
_Constructor.add_constructor("tag:yaml.org,2002:seq", _Constructor.construct_lined_seq)

if _Parser is not None:

    class _Loader(_Parser, _Constructor, _Resolver):
        def __init__(self, stream):
            _Parser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

else:  # pragma: no cover
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, _Constructor, _Resolver):
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document into Mapping/Sequence/scalars, or raise YamlProblem."""
    loader = _Loader(text)
    try:
        deep = too_deep(yaml.parse(text, Loader=_Loader))
        root = None if deep else loader.get_single_node()
        deep = deep or too_deep_through_aliases(root)
        if deep is not None:
            raise YamlProblem(deep.line + 1, f"nested more than {MAX_DEPTH} deep: a flow never needs that")
        big = too_big_through_aliases(root)
        if big is not None:
            mark, aliased = big
            what = "its aliases expand to" if aliased else "it holds"
            raise YamlProblem(mark.line + 1, f"{what} more than {MAX_NODES} values: a flow never needs that")
        return None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark, opened = exc.problem_mark or exc.context_mark, exc.context_mark
        if opened is not None and mark is not None and _at_end(text, mark):
            mark = opened  # where the quote or bracket left open began: the file's end helps nobody
        line = mark.line + 1 if mark is not None else None
        context = exc.context
        if context and opened is not None and opened.line + 1 != line:
            context += f" from line {opened.line + 1}"
        message = " ".join(p for p in (context, exc.problem) if p) or "not valid YAML"
        if exc.context == "while scanning a quoted scalar" and mark is opened:
            message = "a quote opened on this line is never closed"
        if line and "\t" in (text.splitlines()[line - 1:line] or [""])[0][:mark.column + 1]:
            message = "a tab where YAML needs spaces: indent with spaces only"
        raise YamlProblem(line, f"not valid YAML: {message}") from None
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YamlProblem(line, f"not valid YAML: a control character ({what}), which YAML does not allow") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(None, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _at_end(text: str, mark) -> bool:
    """Whether nothing but blank space follows `mark`: a problem found at the end of the file."""
    lines = text.splitlines()[mark.line:]
    return not (lines[0][mark.column:] if lines else "").strip() and not any(line.strip() for line in lines[1:])


def line_at(tree: Any, path: tuple) -> int | None:
    """The line of the deepest node along `path` that has a known line."""
    line = getattr(tree, "line", None)
    node = tree
    for key in path:
        if isinstance(node, Mapping) and key in node:
            line = node.key_lines.get(key, line)
            node = node[key]
        elif isinstance(node, Sequence) and isinstance(key, int) and 0 <= key < len(node):
            line = node.item_lines[key]
            node = node[key]
        else:
            break
    return line
