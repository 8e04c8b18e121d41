"""How deeply a flow file nests, checked before its tree is built.

Building the tree recurses once a level: in C (libyaml's composer), where some
30,000 levels crash the process, and in Python, where 500 raise RecursionError.
A flow needs a handful (a choice's words in one language are 7 deep), so a file
nested more than MAX_DEPTH collections deep is refused with the line it happens at.
"""
from __future__ import annotations

from typing import Iterable

import yaml

MAX_DEPTH = 50
# Nodes a file may stand for once its aliases are expanded. The largest bundled flow is a few
# hundred; ten levels of ten aliases each, a few hundred bytes of YAML, would be ten thousand million.
MAX_NODES = 20_000


def too_deep(events: Iterable[yaml.Event]) -> yaml.Mark | None:
    """Where the first collection nested deeper than MAX_DEPTH starts, from a parser's events."""
    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def too_deep_through_aliases(root: yaml.Node | None) -> yaml.Mark | None:
    """The same over the composed nodes, where an alias puts one collection inside another.

    Walked without recursion. A node reached through several aliases is walked again only
    when reached deeper than before, so anchors cannot make this slow; an alias inside its
    own anchor nests without end and is too deep.
    """
    deepest: dict[int, int] = {}
    stack = [(root, 1)] if isinstance(root, yaml.CollectionNode) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return node.start_mark
        if deepest.get(id(node), 0) >= depth:
            continue
        deepest[id(node)] = depth
        children = node.value if isinstance(node, yaml.SequenceNode) else [p for pair in node.value for p in pair]
        stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, yaml.CollectionNode))
    return None


def too_big_through_aliases(root: yaml.Node | None) -> tuple[yaml.Mark, bool] | None:
    """Where the tree, with every alias expanded (as building it does), first grows past MAX_NODES,
    and whether aliases made it so (False: the file itself is that big).

    Run once `too_deep_through_aliases` has passed, so the nodes form no cycle and nest at most
    MAX_DEPTH deep: each node's expanded size is worked out once, children first.
    """
    size: dict[int, int] = {}
    aliased = []

    def expanded(node: yaml.Node) -> int:
        """The node's size with its aliases expanded; _TooBig where it first grows past MAX_NODES."""
        if id(node) in size and isinstance(node, yaml.CollectionNode):
            aliased.append(True)  # reached a second time: through an alias
        if id(node) not in size:
            total = 1
            if isinstance(node, yaml.CollectionNode):
                children = node.value if isinstance(node, yaml.SequenceNode) else [p for pair in node.value for p in pair]
                for child in children:
                    total += expanded(child)
                    if total > MAX_NODES:
                        raise _TooBig(node.start_mark)
            size[id(node)] = total
        return size[id(node)]

    try:
        expanded(root) if root is not None else 0
    except _TooBig as big:
        return big.mark, bool(aliased)
    return None


class _TooBig(Exception):
    """A node's expanded size passed MAX_NODES, at `mark`."""

    def __init__(self, mark) -> None:
        super().__init__(mark)
        self.mark = mark
