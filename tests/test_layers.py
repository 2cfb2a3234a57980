"""The packages of ``src/tokensmith`` are layered one way.

``core`` (grants, tokens, errors) knows no storage, HTTP, CLI, client or guard;
storage implements the core's ports and knows no web or CLI; the web layer knows no
CLI; the client library stands alone. Every import is checked, at any depth: inside
functions and under ``TYPE_CHECKING`` as much as at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tokensmith"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("storage", "web", "cli", "client", "resource"),
    "storage": ("web", "cli"),
    "web": ("cli",),
    "client": ("core", "storage", "web", "cli"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name ``from ... import`` refers to, resolving relative imports."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    anchor = base[: len(base) - drop] if drop else base
    return ".".join([*anchor, *([node.module] if node.module else [])])


def imports_of(path: Path, root: Path = SRC) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, statement, imported names)`` for every import in the file, at any depth.

    ``from a import b`` names both ``a`` and ``a.b`` (``b`` may be a submodule).
    """
    module = _module_name(path, root)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield node.lineno, ast.unparse(node), [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, module, is_package)
            names = [target, *(f"{target}.{alias.name}" for alias in node.names)]
            yield node.lineno, ast.unparse(node), names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(layer: str) -> list[str]:
    """Every import in ``tokensmith.<layer>`` of a package it must not use, as
    ``module:line: statement``."""
    banned = [f"tokensmith.{b}" for b in FORBIDDEN[layer]]
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, statement, names in imports_of(path):
            if any(_within(name, package) for name in names for package in banned):
                found.append(f"{_module_name(path, SRC)}:{line}: {statement}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_from_the_layers_above_or_beside_it(layer: str) -> None:
    assert (PACKAGE / layer).is_dir(), f"no package tokensmith.{layer} under {SRC}"
    bad = violations(layer)
    assert not bad, f"tokensmith.{layer} must not import {FORBIDDEN[layer]}:\n" + "\n".join(bad)


def test_the_checker_sees_nested_relative_and_type_checking_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from tokensmith.storage.sql import store\n"
        "def f() -> None:\n"
        "    import tokensmith.web.app\n"
        "from ..cli import serve\n"
        "from .. import client\n"
    )
    path = tmp_path / "tokensmith" / "core" / "mod.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    names = {name for _, _, found in imports_of(path, tmp_path) for name in found}
    assert {
        "tokensmith.storage.sql.store",
        "tokensmith.web.app",
        "tokensmith.cli",
        "tokensmith.client",
    } <= names
