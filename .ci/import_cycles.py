"""Fails when any import circle exists between modules of flows, tasks and storage.

grimp counts imports inside functions too, so a circle hidden by a lazy import is still one.
import-linter's contracts (pyproject.toml) check directions between packages; this checks every
module against every other, whatever package they are in.
"""

from __future__ import annotations

import sys

import grimp

PACKAGES = ("flows", "tasks", "storage")


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative, no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
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
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)
    cycles = strongly_connected(graph)
    for modules in cycles:
        print("import circle: " + " <-> ".join(modules), file=sys.stderr)
    if not cycles:
        print(f"No import circles among {len(graph.modules)} modules of {', '.join(PACKAGES)}.")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
