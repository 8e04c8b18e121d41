"""The step graph: routes to missing steps, unreachable steps, loops that never wait,
and the hand-overs (start_flow) a new session reaches before it waits."""
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


def cycles(nodes: list[str], graph: dict[str, list[str]]) -> list[list[str]]:
    """The groups of nodes that loop: strongly connected, and more than one or one that leads to itself."""
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
    for component in cycles([s for s in known if s in busy], busy):
        ordered = [s for s in known if s in component]
        loop = " -> ".join(ordered + [ordered[0]])
        found.append(GraphFinding(ordered[0], (), f"a loop that never waits for the member: {loop}"))
    return found


def handovers_before_waiting(order: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(step id, flow id) of each start_flow some path from the first step reaches without a wait."""
    graph = edges(order)
    configs = dict(order)
    found, seen, todo = [], set(), [order[0][0]] if order else []
    while todo:
        step_id = todo.pop()
        if step_id in seen or step_id not in configs:
            continue
        seen.add(step_id)
        config = configs[step_id]
        if config["type"] == "start_flow":
            found.append((step_id, config["flow"]))
        if not STEP_TYPES[config["type"]].waits:
            todo.extend(target for _, target in graph[step_id])
    return found


def shortest_path(graph: dict[str, list[str]], start: str, goal: str) -> list[str]:
    """The nodes from `start` to `goal` by the fewest edges; empty when `goal` cannot be reached."""
    came_from: dict[str, str | None] = {start: None}
    todo = [start]
    for node in todo:
        for child in graph.get(node, ()):
            if child not in came_from:
                came_from[child] = node
                todo.append(child)
    if goal not in came_from:
        return []
    path = [goal]
    while path[-1] != start:
        path.append(came_from[path[-1]])
    return path[::-1]
