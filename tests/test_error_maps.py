"""The error map at the top of each errors module is accurate: every exception class the
module defines or handles is drawn in its tree, under its real base class, with the
``error`` code and HTTP status the class carries."""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from types import ModuleType

import pytest

from tokensmith.client import errors as client_errors
from tokensmith.core import errors as core_errors
from tokensmith.resource import errors as resource_errors
from tokensmith.web import errors as web_errors

#: a tree entry: ``+-- `` branches (or none, for the root), then the class name
ENTRY = re.compile(r"^(?P<branch>[ |]*\+-- |)(?P<name>[A-Z][A-Za-z]+)\b(?P<rest>.*)$")


@dataclass
class Entry:
    name: str
    column: int
    parent: str | None
    text: str  # the rest of its line and of its continuation lines


def tree(module: ModuleType) -> dict[str, Entry]:
    """The entries of the docstring's literal block (after ``::``), by class name."""
    doc = module.__doc__ or ""
    _, sep, block = doc.partition("::\n\n")
    assert sep, f"{module.__name__} has no error map"
    entries: dict[str, Entry] = {}
    stack: list[Entry] = []
    for line in block.splitlines():
        if line and not line.startswith("    "):
            break  # the literal block ends
        found = ENTRY.match(line[4:])
        if found is None:
            if stack:
                stack[-1].text += " " + line.strip(" |")
            continue
        column = len(found["branch"])
        while stack and stack[-1].column >= column:
            stack.pop()
        entry = Entry(found["name"], column, stack[-1].name if stack else None, found["rest"])
        entries[entry.name] = entry
        stack.append(entry)
    return entries


def exception_classes(module: ModuleType) -> dict[str, type[BaseException]]:
    """Every exception class the module defines or imports."""
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }


MODULES = [core_errors, web_errors, client_errors, resource_errors]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_exception_class_of_the_module_is_in_its_error_map(module: ModuleType) -> None:
    drawn = tree(module)
    defined = exception_classes(module)
    assert defined, "an errors module with no exception class"
    assert sorted(set(defined) - set(drawn)) == []


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_each_class_hangs_under_its_base_class(module: ModuleType) -> None:
    known = {**vars(builtins), **exception_classes(module), "OAuthError": core_errors.OAuthError}
    for entry in tree(module).values():
        cls = known[entry.name]
        assert isinstance(cls, type)
        if entry.parent is None:
            continue
        assert cls.__bases__[0].__name__ == entry.parent, entry.name


@pytest.mark.parametrize(
    ("module", "code", "status"),
    [
        (core_errors, "error", "status"),
        (resource_errors, "error", "status_code_default"),
        (client_errors, "default_code", None),
    ],
    ids=["core", "resource", "client"],
)
def test_each_class_shows_its_error_code_and_status(
    module: ModuleType, code: str, status: str | None
) -> None:
    for name, entry in tree(module).items():
        cls = vars(module).get(name)
        if cls is None or not hasattr(cls, code):
            continue  # a base class from elsewhere
        words = entry.text.replace(",", " ").split()
        assert words[0] == (getattr(cls, code) or "-"), name
        if status is not None:
            assert words[1] == str(getattr(cls, status)), name


def test_the_client_map_lists_every_code_and_status_that_picks_a_class() -> None:
    drawn = tree(client_errors)
    for code, cls in client_errors._BY_CODE.items():
        assert code in drawn[cls.__name__].text.replace(",", " ").split(), code
    for status, cls in client_errors._BY_STATUS.items():
        assert str(status) in drawn[cls.__name__].text.split(), status
