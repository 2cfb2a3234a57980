"""The README stays a front door, and the docs hold together: every relative link leads to
a file (and heading), every doc is listed, every setting is documented with its default.

The commands themselves are run by ``tests/test_docs_commands.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tokensmith.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED = [
    README,
    *DOCS,
    ROOT / "bench" / "README.md",
    *sorted((ROOT / "bench" / "results").glob("*.md")),
    ROOT / "CHANGELOG.md",
]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^\s*(`{3,}).*?^\s*\1\s*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+).+?\1")


def _prose(doc: Path) -> str:
    """The Markdown without code blocks and code spans."""
    return INLINE_CODE.sub("", FENCED.sub("", doc.read_text()))


def _anchors(doc: Path) -> set[str]:
    """GitHub's ids of a Markdown file's headings."""
    headings = re.findall(r"^#+\s+(.*?)\s*$", FENCED.sub("", doc.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _links(doc: Path) -> list[str]:
    return [t for t in LINK.findall(_prose(doc)) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_short_and_keeps_the_dialects_table() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    for endpoint in ("/oauth/token", "/oauth/auth", "/v2/tpay/access-token", "/o/token/"):
        assert f"| `POST {endpoint}` |" in text


def test_the_readme_has_the_test_command_ci_runs() -> None:
    text = README.read_text()
    after = text[text.index("<!-- test-command -->") :].split("\n")
    assert after[1] == "```bash"
    assert after[2] == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' "
        "&& .venv/bin/python -m pytest"
    )


def _leads_nowhere(doc: Path, target: str) -> bool:
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    if not dest.exists():
        return True
    return bool(anchor) and dest.suffix == ".md" and anchor not in _anchors(dest)


@pytest.mark.parametrize("doc", LINKED, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading(doc: Path) -> None:
    assert [t for t in _links(doc) if _leads_nowhere(doc, t)] == []


def test_the_readme_lists_every_doc() -> None:
    listed = {(README.parent / t).resolve() for t in _links(README)}
    assert [d.name for d in DOCS if d.resolve() not in listed] == []


def _rendered(value: Any) -> str:
    """A default as docs/configuration.md writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return " ".join(value) or '""'
    if value is None or value == "":
        return '""'
    return str(value)


def test_configuration_names_every_setting_with_its_default() -> None:
    rows = re.findall(
        r"^\| `TOKENSMITH_(\w+)` \| `([^`]*)` \|",
        (ROOT / "docs" / "configuration.md").read_text(),
        re.M,
    )
    documented = {name.lower(): default for name, default in rows}
    assert len(documented) == len(rows), "a setting is listed twice"
    fields = Settings.model_fields
    assert sorted(documented.keys() - fields.keys()) == [], "documented but not a setting"
    assert sorted(fields.keys() - documented.keys()) == [], "a setting docs/configuration.md lacks"
    wrong = {
        name: (documented[name], _rendered(field.default))
        for name, field in fields.items()
        if documented[name] != _rendered(field.default)
    }
    assert wrong == {}


def test_the_changelog_groups_changes_by_release() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert releases[0] == "Unreleased" and "0.1.0" in releases
    unreleased = text.split("\n## [")[1]
    assert "### Fixed" in unreleased
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("  ")] == [], "one line per change"
    assert [line for line in lines if "req/s" in line or "µs" in line] == [], "figures: bench/"
