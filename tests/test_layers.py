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


# -- no handler touches the store ------------------------------------------------------------

#: The web modules that own the store: the composition root, which builds the core's
#: services on it, and the lifespan's background jobs and shutdown. Every other web module
#: (handlers, pages, middleware) acts through those services.
STORE_OWNERS = ("compose.py", "jobs.py", "app.py")


def store_uses(path: Path, root: Path = SRC) -> list[str]:
    """Every place the module reaches the store, as ``line: code`` in line order: an
    attribute named ``store`` at any depth (``ctx.store``, ``m.store.get_user``,
    ``getattr(x, "store")``), or an import of ``tokensmith.storage``."""
    return [f"{line}: {code}" for line, code in sorted(_store_uses(path, root))]


def _store_uses(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        named = isinstance(node, ast.Attribute) and node.attr == "store"
        looked_up = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "store"
        )
        if named or looked_up:
            yield node.lineno, ast.unparse(node)
    for line, statement, names in imports_of(path, root):
        if any(_within(name, "tokensmith.storage") for name in names):
            yield line, statement


def handler_store_uses(package: Path = PACKAGE, root: Path = SRC) -> list[str]:
    """Every use of the store in ``tokensmith.web`` outside :data:`STORE_OWNERS`."""
    web = package / "web"
    found = []
    for path in sorted(web.rglob("*.py")):
        if path.relative_to(web).as_posix() in STORE_OWNERS:
            continue
        found += [f"{_module_name(path, root)}:{use}" for use in store_uses(path, root)]
    return found


def test_no_handler_touches_the_store() -> None:
    bad = handler_store_uses()
    assert not bad, (
        "the web layer acts through the core's services (ctx.sessions, ctx.authorizations, "
        "...); only " + ", ".join(STORE_OWNERS) + " may touch the store:\n" + "\n".join(bad)
    )


def test_the_store_check_sees_a_handler_reaching_the_store(tmp_path: Path) -> None:
    web = tmp_path / "tokensmith" / "web"
    (web / "panel").mkdir(parents=True)
    (web / "panel" / "users.py").write_text(
        "async def page(request):\n"
        "    ctx = ctx_of(request)\n"
        "    if True:\n"
        "        return await ctx.store.get_user('u1')\n"
    )
    (web / "ui.py").write_text(
        "def f(m):\n"
        "    from tokensmith.storage.memory import MemoryStore\n"
        "    return getattr(m, 'store')\n"
    )
    (web / "jobs.py").write_text("def start(ctx):\n    return ctx.store\n")
    (web / "fine.py").write_text("async def f(ctx):\n    return await ctx.users.listing()\n")
    found = handler_store_uses(tmp_path / "tokensmith", tmp_path)
    assert found == [
        "tokensmith.web.panel.users:4: ctx.store",
        "tokensmith.web.ui:2: from tokensmith.storage.memory import MemoryStore",
        "tokensmith.web.ui:3: getattr(m, 'store')",
    ], found


def test_the_shared_jwk_module_imports_nothing_of_tokensmith() -> None:
    """``tokensmith.jwk`` serves the core, the client library and the guard alike."""
    path = PACKAGE / "jwk.py"
    bad = [
        statement
        for _, statement, names in imports_of(path)
        if any(_within(name, "tokensmith") for name in names)
    ]
    assert not bad, bad


def test_the_shared_client_cert_module_imports_nothing_of_tokensmith() -> None:
    """``tokensmith.client_cert`` serves the core, the web layer and the guard alike."""
    path = PACKAGE / "client_cert.py"
    bad = [
        statement
        for _, statement, names in imports_of(path)
        if any(_within(name, "tokensmith") for name in names)
    ]
    assert not bad, bad
