"""The package's shape, as ``docs/ARCHITECTURE.md`` and the style guide state it: one-way imports
(``core`` <- ``watch`` <- ``api`` <- ``demo`` <- ``cli``) and modules of at most 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "clawstats"
MAX_LINES = 400
#: What each layer may import of the package, besides itself (settings is read by every outer layer).
ALLOWED = {
    "core": set(),
    "watch": {"core", "settings"},
    "api": {"core", "watch", "settings"},
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "demo_data" not in p.parts)


def _imported(path: Path) -> set[str]:
    """The ``clawstats`` modules a module imports (at any depth of its code: lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "clawstats" or n.startswith("clawstats.")}


def test_the_walk_finds_the_layers() -> None:
    found = {p.parent.name for p in _modules()}
    assert {"core", "watch", "api", "clawstats"} <= found
    assert "clawstats.core.records" in _imported(PACKAGE / "core" / "transcript.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_inner_layers(path: Path) -> None:
    layer = path.parent.name
    if layer not in ALLOWED:
        return  # the package's top: cli, demo, settings
    for name in _imported(path):
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        if name == "clawstats":
            continue  # the package's __init__: its version alone
        assert target == layer or target in ALLOWED[layer], f"{path.name} ({layer}) imports {name}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE)}: {lines} lines (split it by what it owns)"
