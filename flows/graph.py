"""The step graph: routes to missing steps, unreachable steps, loops that never wait."""
from __future__ import annotations

from dataclasses import dataclass

from flows.steps import STEP_TYPES


@dataclass(frozen=True)
class GraphFinding:
    """A problem with the flow's shape, located at a step and a path in it."""

    step: str
    path: tuple
    message: str


def edges(order: list[tuple[str, dict]]) -> dict[str, list[tuple[tuple, str]]]:
    """Each step's outgoing routes, including falling through to the next step."""
    graph: dict[str, list[tuple[tuple, str]]] = {}
    for index, (step_id, config) in enumerate(order):
        kind = STEP_TYPES[config["type"]]
        routes = list(kind.routes(config))
        if kind.falls_through(config) and index + 1 < len(order):
            routes.append(((), order[index + 1][0]))
        graph.setdefault(step_id, routes)
    return graph


def _components(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(component)
    return found


def graph_findings(order: list[tuple[str, dict]]) -> list[GraphFinding]:
    """Every route, reachability and loop problem of a flow's steps."""
    graph = edges(order)
    known = [step_id for step_id, _ in order]
    found = []
    for step_id, routes in graph.items():
        for path, target in routes:
            if target not in graph:
                found.append(GraphFinding(step_id, path, f"route to a step that does not exist: '{target}'"))
    seen, todo = set(), [known[0]] if known else []
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(t for _, t in graph.get(node, ()) if t in graph)
    for step_id in known:
        if step_id not in seen:
            found.append(GraphFinding(step_id, (), "unreachable: no route leads to this step"))
    waiting = {s for s, config in order if STEP_TYPES[config["type"]].waits}
    busy = {s: [t for _, t in graph[s] if t in graph and t not in waiting]
            for s in known if s not in waiting}
    for component in _components([s for s in known if s in busy], busy):
        ordered = [s for s in known if s in component]
        loop = " -> ".join(ordered + [ordered[0]])
        found.append(GraphFinding(ordered[0], (), f"a loop that never waits for the member: {loop}"))
    return found
