"""Import boundaries of the package: the Dagster code location loads no generator code, the
maintainer's vocabulary tool is not part of the runtime package, and defs/jobs.py and
defs/raw/sensors.py do not import each other, not even through a deferred import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rwe_assets

PACKAGE_DIR = Path(rwe_assets.__file__).parent
REPO_DIR = PACKAGE_DIR.parent


def loaded_modules(statement: str, prefix: str) -> list[str]:
    """Modules starting with ``prefix`` in sys.modules after ``statement``, in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({prefix!r}))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_DIR
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every rwe_assets module a file imports, at the top or inside a function, with the packages a
    `from a.b import c` runs (a, a.b) and, when c is a module, a.b.c."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = {module_name(p) for p in PACKAGE_DIR.rglob("*.py")}
    found = {n for n in names if n in modules or n == "tools" or n.startswith("tools.")}
    return found | {".".join(n.split(".")[:k]) for n in found for k in range(2, n.count(".") + 1)}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE_DIR.rglob("*.py")}


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module == goal:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return False


def test_the_code_location_imports_no_generator_code():
    assert loaded_modules("import rwe_assets.definitions", "rwe_assets.synthetic") == []


def test_the_generator_check_sees_an_import_of_the_generator():
    """The check above is not blind: importing the generator's CLI loads the generator package."""
    assert "rwe_assets.synthetic" in loaded_modules("import rwe_assets.synthetic.cli", "rwe_assets.synthetic")


def test_the_vocabulary_tool_is_not_in_the_runtime_package():
    assert not (PACKAGE_DIR / "lib" / "vocab_subset.py").exists()
    assert (REPO_DIR / "tools" / "vocabulary" / "vocab_subset.py").exists()
    graph = import_graph()
    assert not [m for m, imported in graph.items() if any(i.startswith("tools") for i in imported)]


@pytest.mark.parametrize(
    ("start", "goal"),
    [
        ("rwe_assets.defs.jobs", "rwe_assets.defs.raw.sensors"),
        ("rwe_assets.defs.jobs", "rwe_assets.defs.raw"),
    ],
)
def test_jobs_do_not_import_the_raw_sensors(start, goal):
    """sensors -> jobs is the one direction: jobs reaching the sensors again (directly, through the raw
    package's __init__, or inside a function) would be the circle this replaces."""
    graph = import_graph()
    assert reaches(graph, "rwe_assets.defs.raw.sensors", "rwe_assets.defs.jobs")
    assert not reaches(graph, start, goal)


def test_the_graph_sees_a_deferred_import():
    """The walk finds imports inside functions: the cli package imports the generator inside `rwe generate`."""
    assert reaches(import_graph(), "rwe_assets.cli", "rwe_assets.synthetic")


def test_no_module_of_the_definitions_imports_itself_again():
    """No circle among the Dagster definitions (defs/ and definitions.py), deferred imports included:
    a circle works only as long as an import stays inside a function."""
    # a submodule's own packages run first whatever it imports: an edge to one of them is no circle
    graph = {m: {i for i in imported if not m.startswith(i + ".")} for m, imported in import_graph().items()}
    defs = [m for m in graph if m.startswith("rwe_assets.defs") or m == "rwe_assets.definitions"]
    circular = [m for m in defs if any(reaches(graph, i, m) for i in graph[m] if i != m)]
    assert circular == []
