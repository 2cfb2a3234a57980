"""The LICENSE file is the license pyproject.toml declares: the full Apache License 2.0,
unchanged, under the project's copyright line."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPYRIGHT = "Copyright 2026 The tokensmith authors"
#: SHA-256 of the canonical text of https://www.apache.org/licenses/LICENSE-2.0.txt with
#: every run of whitespace made one space (so indentation and line ends do not matter).
APACHE_2_0 = "0ffddef9e48f8a09aed5caf2d44f7ba1c1be2d9b8e0a6f693b1635b2d5566645"


def _declared() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["license"])


def test_pyproject_declares_apache_2_0() -> None:
    assert _declared() == "Apache-2.0"


def test_license_starts_with_the_copyright_line() -> None:
    assert (ROOT / "LICENSE").read_text().splitlines()[0] == COPYRIGHT


def test_license_is_the_full_unchanged_apache_2_0_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    body = text.split("\n", 1)[1]  # after the copyright line
    assert body.lstrip().startswith("Apache License\n")
    assert hashlib.sha256(" ".join(body.split()).encode()).hexdigest() == APACHE_2_0
