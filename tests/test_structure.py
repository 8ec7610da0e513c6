"""The package's shape, read from its source: dependencies run one way and functions stay short.

Every module of `alexnet/` belongs to a unit (a subpackage, or a top-level module), and each unit sits
on a level. A unit may import (at the top of a module or lazily inside a function) only units on
lower levels: command line -> experiments/figures/export/bench -> training/evaluation -> runs ->
data/model/drawing -> presets -> config/errors/files/progress/device/interrupt/version.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alexnet"
MAX_FUNCTION_LINES = 80

LEVELS = {
    "errors": 0, "version": 0,
    "config": 1, "files": 1, "progress": 1, "device": 1, "interrupt": 1,
    "presets": 2, "ablations": 3,
    "data": 4, "model": 4, "drawing": 4,
    "runs": 5,
    "training": 6, "evaluation": 6,
    "experiments": 7, "figures": 7, "export": 7, "bench": 7,
    "cli": 8, "__main__": 9, "__init__": 9,
}


def _unit(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_units(path: Path, source: str | None = None) -> set[tuple[str, int]]:
    """(unit, line) of every `alexnet` import in the file, relative or absolute, wherever it is."""
    module = ["alexnet", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = module[:-1]  # a module's package; an __init__'s is its own folder, which the slice gives too
    found = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            names = [target] if node.module or len(target) > 1 else [target + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in names:
            if parts[0] == "alexnet" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_level():
    assert {_unit(p) for p in _files()} <= set(LEVELS)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way(path):
    unit = _unit(path)
    wrong = [f"line {line}: {unit} imports {other}" for other, line in sorted(_imported_units(path))
             if other != unit and LEVELS.get(other, 99) >= LEVELS[unit]]
    assert wrong == []


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = {}
    for path in _files():
        graph.setdefault(_unit(path), set()).update(u for u, _ in _imported_units(path) if u != _unit(path))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    assert [u for u in graph if reaches(u, u, {u})] == []


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_are_short(path):
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_scan_sees_lazy_relative_and_root_imports():
    """The scan itself: imports inside a function, relative ones, and the package root are all found."""
    source = "def f():\n    from ..training import trainer\n    from . import loader\n    from .. import build_model\n"
    found = _imported_units(PACKAGE / "data" / "probe.py", source)
    assert found == {("training", 2), ("data", 3), ("build_model", 4)}
    assert "build_model" not in LEVELS  # so importing from the package root counts as a wrong direction
