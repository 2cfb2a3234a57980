"""The suite leaves the work tree as it found it.

``tests/conftest.py`` takes :func:`tree_state` when the session starts and again when it
ends, and fails the run if a test wrote into the repository: files the suite makes belong
in a temporary folder (screenshots go to ``docs/screenshots`` only when
``TOKENSMITH_SCREENSHOTS`` asks for it).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TreeState", "screenshots_dir", "tree_changes", "tree_state"]


#: Caches of the tools the suite runs (git-ignored): writing them is expected.
TOOL_CACHES = (
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".venv",
    ".egg-info",
)

TreeState = dict[str, str]


def tree_state(root: Path) -> TreeState | None:
    """Every path ``git status`` reports (untracked and ignored ones included), with a
    digest of its content; ``None`` outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=normal"],
            cwd=root,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    state: TreeState = {}
    for entry in out.decode(errors="replace").split("\0"):
        if len(entry) < 4:
            continue
        path = entry[3:]
        if any(part.endswith(TOOL_CACHES) for part in path.rstrip("/").split("/")):
            continue
        state[path] = entry[:2] + " " + _digest(root / path)
    return state


def _digest(path: Path) -> str:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "dir" if path.is_dir() else "gone"


def tree_changes(before: TreeState, after: TreeState) -> list[str]:
    """Paths written, created or removed between two states."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


ROOT = Path(__file__).resolve().parents[1]
_shots: list[Path] = []


def screenshots_dir() -> Path:
    """Where the browser tests save screenshots: ``TOKENSMITH_SCREENSHOTS`` (relative to
    the repository; ``TOKENSMITH_SCREENSHOTS=docs/screenshots`` renews the docs' pictures),
    else a temporary folder removed when the run ends."""
    chosen = os.environ.get("TOKENSMITH_SCREENSHOTS")
    if chosen:
        path = ROOT / chosen
    else:
        if not _shots:
            _shots.append(Path(tempfile.mkdtemp(prefix="tokensmith-screenshots-")))
            atexit.register(shutil.rmtree, _shots[0], True)
        path = _shots[0]
    path.mkdir(parents=True, exist_ok=True)
    return path
