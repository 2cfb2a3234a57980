"""The code stays typed and tidy: ruff and mypy --strict run with the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


@pytest.mark.parametrize(
    "args",
    [("check", "src", "tests", "bench", "examples"), ("format", "--check", "src", "tests")],
    ids=["lint", "format"],
)
def test_ruff(args: tuple[str, ...]) -> None:
    paths = [a for a in args if not (ROOT / a).exists() and a in ("bench", "examples")]
    argv = [a for a in args if a not in paths]
    result = subprocess.run([_tool("ruff"), *argv], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    marker = readme.index("<!-- test-command -->")
    block = readme[marker:].split("```")[1]
    command = block.split("\n", 1)[1].strip()
    assert "pytest" in command and "pip install" in command
    assert "<!-- test-command -->" in (ROOT / ".ci" / "run").read_text()
