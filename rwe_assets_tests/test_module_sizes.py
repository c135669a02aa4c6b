"""Modules stay split by job (issue 28): no module of the package or of tools/ is over 500 lines (tests
and bench/ aside), and the package's modules do not import each other in a circle at import time."""

from __future__ import annotations

import ast
from pathlib import Path

import rwe_assets

PACKAGE = Path(rwe_assets.__file__).parent
TOOLS = PACKAGE.parent / "tools"
MAX_LINES = 500


def oversized(folder: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """Modules under `folder` longer than `limit` lines, with their length."""
    sizes = {p.relative_to(folder).as_posix(): len(p.read_text().splitlines()) for p in folder.rglob("*.py")}
    return {name: lines for name, lines in sizes.items() if lines > limit}


def module_name(folder: Path, package: str, path: Path) -> str:
    return ".".join([package, *path.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")


def top_level_imports(folder: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level (what runs at import time; an
    import under `if TYPE_CHECKING:` does not run)."""
    modules = {module_name(folder, package, p) for p in folder.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        found: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        graph[module_name(folder, package, path)] = found & modules
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles, each as the path that closes it (a package importing its own submodules
    in __init__ is not a circle)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_no_module_is_over_500_lines():
    assert oversized(PACKAGE) == {}
    assert oversized(TOOLS) == {}


def test_the_size_check_sees_a_long_module(tmp_path):
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert oversized(tmp_path) == {"long.py": MAX_LINES + 1}


def test_modules_import_no_circle():
    assert cycles(top_level_imports(PACKAGE, "rwe_assets")) == []


def test_the_circle_check_sees_a_circle(tmp_path):
    (tmp_path / "a.py").write_text("from pkg.b import f\n")
    (tmp_path / "b.py").write_text("from pkg.a import g\n")
    (tmp_path / "c.py").write_text("from pkg.a import g\n")
    assert cycles(top_level_imports(tmp_path, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]
