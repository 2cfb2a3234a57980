"""Every command of the README and ``docs/`` runs as written, against a real demo server.

The README's quickstart starts ``.venv/bin/tokensmith serve --demo`` in the checkout; the
docs' commands run in a second shell beside it. Here the same server runs in a temporary
folder holding ``.venv`` (this interpreter's environment) and ``examples``, on port 8000
when it is free and on another port otherwise: the commands' ``127.0.0.1:8000`` (and the
example API's 8001) are rewritten to match. Each ```` ```bash ```` block runs in a fresh
``bash -euo pipefail`` in that folder, with ``curl`` failing on an HTTP error status; the
README's ```` ```python ```` block runs with the venv's Python. A block that must not run
carries ``<!-- not-run: reason -->`` in the comment lines right above its fence.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS_PORT, API_PORT = 8000, 8001
FENCE = re.compile(r"^\s*(`{3,})([\w+-]*)\s*$")
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->")
#: Shell code must be fenced as ``bash`` so that it is run, or be marked.
OTHER_SHELLS = {"sh", "shell", "console", "zsh", "shell-session"}
#: ``curl`` as the docs write it, but an HTTP error status fails the command.
PRELUDE = 'curl() { command curl --fail-with-body "$@"; }\n'
BLOCK_TIMEOUT = 60
CLI_MAIN = "from tokensmith.cli import main; main()"


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    code: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        if self.not_run is not None:
            return False
        return self.lang == "bash" or (self.lang == "python" and self.doc.name == "README.md")


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the ``not-run`` reason above each."""
    lines = doc.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(1)
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        reason = None
        above = i - 1
        while above >= 0 and lines[above].strip().startswith("<!--"):
            marked = NOT_RUN.search(lines[above])
            if marked:
                reason = marked.group(1).strip()
            above -= 1
        code = "\n".join(
            line.removeprefix(lines[i][: lines[i].index("`")]) for line in lines[i + 1 : end]
        )
        found.append(Block(doc, i + 1, opening.group(2), code + "\n", reason))
        i = end + 1
    return found


ALL_BLOCKS = [block for doc in DOCUMENTS for block in blocks(doc)]


def test_shell_blocks_are_bash_and_every_mark_says_why() -> None:
    others = [b.where for b in ALL_BLOCKS if b.lang in OTHER_SHELLS]
    assert others == [], f"fence shell code as bash (or mark it not-run): {others}"
    unexplained = [b.where for b in ALL_BLOCKS if b.not_run == ""]
    assert unexplained == [], f"a not-run mark needs a reason: {unexplained}"
    readme = [b for b in ALL_BLOCKS if b.doc.name == "README.md"]
    assert sum(b.runs for b in readme) >= 4
    assert [b.code.split()[0:2] for b in readme if b.not_run is not None] == [
        ["python3", "-m"],
        ["python3", "-m"],
    ], "the README marks only its two quickstart commands"


def test_the_block_reader_sees_marks_and_languages(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text(
        "text\n\n<!-- not-run: needs a database -->\n<!-- test-command -->\n```bash\nfalse\n```\n"
        "\n```bash\ntrue\n```\n\n- item:\n\n  ```python\n  print(1)\n  ```\n\n````markdown\n"
        "```bash\nnot a block\n```\n````\n"
    )
    found = blocks(doc)
    assert [(b.lang, b.not_run, b.code) for b in found] == [
        ("bash", "needs a database", "false\n"),
        ("bash", None, "true\n"),
        ("python", None, "print(1)\n"),
        ("markdown", None, "```bash\nnot a block\n```\n"),
    ]
    assert [b.runs for b in found] == [False, True, True, False]


def _port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise AssertionError("no free port")


def _venv(workdir: Path) -> None:
    """``workdir/.venv`` whose ``bin/python`` and ``bin/tokensmith`` are this interpreter's."""
    venv = workdir / ".venv"
    if sys.prefix != sys.base_prefix and (Path(sys.prefix) / "bin" / "tokensmith").exists():
        venv.symlink_to(sys.prefix, target_is_directory=True)
        return
    bin_dir = venv / "bin"
    bin_dir.mkdir(parents=True)
    scripts = {
        "python": f'exec "{sys.executable}" "$@"\n',
        "tokensmith": f'exec "{sys.executable}" -c "{CLI_MAIN}" "$@"\n',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)


@dataclass
class DemoSite:
    workdir: Path
    env: dict[str, str]
    rewrites: dict[str, str]

    def prepare(self, code: str) -> str:
        for old, new in self.rewrites.items():
            code = code.replace(old, new)
        return code


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    if shutil.which("curl") is None:
        pytest.skip("the docs' commands use curl, which is not installed")
    workdir = tmp_path_factory.mktemp("docs-commands")
    _venv(workdir)
    (workdir / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    port, api_port = _port(DOCS_PORT), _port(API_PORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [str(workdir / ".venv" / "bin" / "tokensmith"), "serve", "--demo", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", server, workdir / "server.log")
        yield DemoSite(
            workdir,
            env,
            {
                f"127.0.0.1:{DOCS_PORT}": f"127.0.0.1:{port}",
                f"127.0.0.1:{API_PORT}": f"127.0.0.1:{api_port}",
                f"PORT={API_PORT}": f"PORT={api_port}",
            },
        )
    finally:
        _stop_group(server.pid)
        server.wait(timeout=15)
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo server exited:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo server did not answer:\n{log.read_text()}")


def _stop_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)


def _run(block: Block, site: DemoSite) -> str | None:
    """Run one block; ``None`` when it exited 0, else what it printed."""
    code = site.prepare(block.code)
    name = f"{block.doc.stem}-{block.line}"
    if block.lang == "python":
        script = site.workdir / f"{name}.py"
        script.write_text(code)
        argv = [str(site.workdir / ".venv" / "bin" / "python"), str(script)]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", PRELUDE + code]
    out = site.workdir / f"{name}.out"
    with out.open("wb") as sink:  # a file, not a pipe: a background job may outlive bash
        proc = subprocess.Popen(
            argv,
            cwd=site.workdir,
            env=site.env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            status = -1
        finally:
            _stop_group(proc.pid)
            proc.wait()
    if status == 0:
        return None
    return f"exit {status}:\n{code}\n--- output ---\n{out.read_text(errors='replace')[-3000:]}"


def _run_document(doc: Path, site: DemoSite) -> tuple[list[str], list[str]]:
    """Run a document's blocks in order: the blocks that ran, and the failures."""
    ran: list[str] = []
    failures: list[str] = []
    for block in ALL_BLOCKS:
        if block.doc == doc and block.runs:
            failed = _run(block, site)
            ran.append(block.where)
            if failed:
                failures.append(f"{block.where}: {failed}")
    return ran, failures


def test_every_unmarked_block_runs(demo: DemoSite) -> None:
    """Documents two at a time (a reader may follow any of them first), each in order."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda doc: _run_document(doc, demo), DOCUMENTS))
    failures = [failure for _, failed in results for failure in failed]
    assert failures == [], "\n\n".join(failures)
    ran = [where for done, _ in results for where in done]
    assert ran == [b.where for b in ALL_BLOCKS if b.runs]
    assert {Path(w.split(":")[0]).name for w in ran} >= {"README.md", "cli.md", "endpoints.md"}
