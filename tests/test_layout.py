"""The package's rooms: imports run one way, with no cycle, and the model's files
never import the class built over them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "recommender"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(source: str, known: set[str]) -> set[str]:
    """The project modules a module's code imports (at its top or inside a
    function: both run), leaving out imports made only for type checkers."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    found.add(submodule)
                elif node.module in known:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(path): path for path in root.rglob("*.py")}
    known = set(files)
    return {
        name: imported_modules(path.read_text(encoding="utf-8"), known) - {name}
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_do_not_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import recommender.b\n"
        "if TYPE_CHECKING:\n"
        "    from recommender.c import C\n"
        "def f():\n"
        "    from recommender.d import x\n"
    )
    known = {"recommender.b", "recommender.c", "recommender.d"}
    assert imported_modules(source, known) == {"recommender.b", "recommender.d"}


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_models_rooms_never_import_the_class_built_over_them() -> None:
    """``recommender.model.engine`` (the public ``Recommender``) imports the
    rooms; no room imports it, nor the package that re-exports it."""
    graph = import_graph()
    rooms = [name for name in graph if name.startswith("recommender.model.")]
    assert {"recommender.model.stages", "recommender.model.update"} <= set(rooms)
    for room in rooms:
        if room == "recommender.model.engine":
            continue
        assert not graph[room] & {"recommender.model", "recommender.model.engine"}, room
