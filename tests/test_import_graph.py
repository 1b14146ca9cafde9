"""No import cycles in edgebench, counting imports inside functions too: a cycle through a
function-level import still means two modules that cannot be read (or split) one without the other.

The graph is built from the source (AST), so it sees every `import` / `from ... import` wherever it
sits, including the ones that only run on a GPU or behind a flag."""
from __future__ import annotations

import ast
from pathlib import Path

import edgebench

SRC = Path(edgebench.__file__).parent
# Edges of cycles that live in other helpers' files, each with its owner; the coordinator empties this
# after merging their branches (an edge listed here that no longer exists fails the test too).
KNOWN_FOREIGN: set[tuple[str, str]] = set()  # edges exempted while another branch removes them (none now)


def _module_name(path: Path) -> str:
    parts = ["edgebench", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the edgebench modules it imports (a `from pkg import name` counts `pkg.name` when
    that is a module, else `pkg`)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import edgebench.x.y.z` -> deepest module
                    target = target.rpartition(".")[0]
                if target and target != mod and target.startswith("edgebench"):
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "edgebench.errors" in graph["edgebench.sweep.spec"]  # module level
    assert "edgebench.toolchain.build" in graph["edgebench.commands.kernels"]  # inside build()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    stale = [edge for edge in KNOWN_FOREIGN if edge[1] not in graph.get(edge[0], ())]
    for a, b in KNOWN_FOREIGN:
        graph.get(a, set()).discard(b)
    found = cycles(graph)
    assert not found, "import cycles (break each by moving the shared piece to a module both import):\n" + \
        "\n".join(" <-> ".join(c) for c in found)
    assert not stale, f"allowlisted edges that no longer exist (remove them from KNOWN_FOREIGN): {stale}"
