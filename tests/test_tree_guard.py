"""A test that writes into the work tree fails the run (``pytest_sessionfinish`` in
``tests/conftest.py``); one that writes to its temporary folder does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.tree_guard import ROOT, screenshots_dir, tree_changes, tree_state

CASES = {
    "ignored-file": ("Path('tokensmith.db').write_bytes(b'x')", "tokensmith.db"),
    "tracked-file": ("Path('docs/picture.png').write_bytes(b'new')", "docs/picture.png"),
    "new-folder": ("Path('results').mkdir(); Path('results/r.md').write_text('x')", "results/"),
}


def _repo(tmp_path: Path, body: str) -> Path:
    """A git repository with the suite's conftest and one test running ``body``."""
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "docs").mkdir()
    for name in ("__init__.py", "conftest.py", "services.py", "tree_guard.py"):
        shutil.copy(ROOT / "tests" / name, repo / "tests" / name)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / "docs" / "picture.png").write_bytes(b"old")
    (repo / "tests" / "test_it.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            def test_it(tmp_path):
                (tmp_path / "scratch.db").write_bytes(b"x")
                {body}
            """
        )
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=repo, check=True)
    return repo


def _pytest(repo: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "TOKENSMITH_TEST_POSTGRES_URL": "",
        "TOKENSMITH_TEST_REDIS_URL": "",
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_test_writing_into_the_tree_fails_the_run(tmp_path: Path, case: str) -> None:
    body, path = CASES[case]
    done = _pytest(_repo(tmp_path, body))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "the tests changed the work tree" in done.stdout
    assert path in done.stdout


def test_a_test_writing_to_its_temporary_folder_passes(tmp_path: Path) -> None:
    done = _pytest(_repo(tmp_path, "pass"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "changed the work tree" not in done.stdout


def test_hypothesis_keeps_its_files_out_of_the_tree(tmp_path: Path) -> None:
    """Its example database and Unicode tables would be a ``.hypothesis`` folder."""
    repo = _repo(tmp_path, "pass")
    (repo / "tests" / "test_it.py").write_text(
        textwrap.dedent(
            """
            from hypothesis import given, strategies as st

            @given(st.text(alphabet=st.characters(codec="utf-8"), max_size=5))
            def test_it(text):
                assert isinstance(text, str)
            """
        )
    )
    done = _pytest(repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (repo / ".hypothesis").exists()


def test_tree_state_sees_content_not_only_status(tmp_path: Path) -> None:
    """A file already modified before the run and written again is still a change."""
    repo = _repo(tmp_path, "pass")
    (repo / "docs" / "picture.png").write_bytes(b"edited by hand")
    before = tree_state(repo)
    assert before is not None
    (repo / "docs" / "picture.png").write_bytes(b"written by a test")
    after = tree_state(repo)
    assert after is not None
    assert tree_changes(before, after) == ["docs/picture.png"]


def test_screenshots_go_to_a_temporary_folder_unless_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TOKENSMITH_SCREENSHOTS", raising=False)
    assert ROOT not in screenshots_dir().parents
    monkeypatch.setenv("TOKENSMITH_SCREENSHOTS", "docs/screenshots")
    assert screenshots_dir() == ROOT / "docs" / "screenshots"
