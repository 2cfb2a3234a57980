"""Install the peers from the package registries into bench/.work (idempotent)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from .config import PEERS_DIR, WORK_DIR, venv_python

VENVS = WORK_DIR / "venvs"
NODE_DIR = WORK_DIR / "node"


def _stamp_ok(stamp: Path, digest: str) -> bool:
    return stamp.exists() and stamp.read_text() == digest


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _run(argv: list[str], cwd: Path | None = None) -> None:
    print("  $", " ".join(argv), flush=True)
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def python_venv(name: str, requirements: Path) -> Path:
    """A venv under .work/venvs/NAME holding exactly ``requirements``; returns its python."""
    venv = VENVS / name
    stamp = venv / ".bench-stamp"
    digest = _digest(requirements)
    if not _stamp_ok(stamp, digest):
        print(f"installing {name} venv from {requirements.relative_to(PEERS_DIR.parent)}")
        if venv.exists():
            shutil.rmtree(venv)
        _run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run([*pip, "-r", str(requirements)])
        stamp.write_text(digest)
    return venv_python(venv)


def node_peer() -> Path:
    """node_modules for node-oidc-provider under .work/node; returns the server script."""
    src = PEERS_DIR / "oidc_provider"
    files = [src / "package.json", src / "package-lock.json", src / "server.mjs"]
    stamp = NODE_DIR / ".bench-stamp"
    digest = _digest(*files)
    if not _stamp_ok(stamp, digest):
        print("installing oidc-provider with npm ci")
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, NODE_DIR / path.name)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR)
        stamp.write_text(digest)
    return NODE_DIR / "server.mjs"


def authlib_python() -> Path:
    return python_venv("authlib", PEERS_DIR / "authlib_app" / "requirements.txt")


def dot_python() -> Path:
    return python_venv("dot", PEERS_DIR / "dot_project" / "requirements.txt")


def bench_python() -> Path:
    """The bench's own venv: matplotlib for the chart, and uvicorn/PyJWT as a fallback."""
    return python_venv("bench", PEERS_DIR.parent / "requirements.txt")
