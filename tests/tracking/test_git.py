"""git_info reads the commit without spawning git, and the dirty flag once per process."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from loopml.tracking import git_info
from loopml.tracking._git import clear_git_cache


def test_outside_a_repository_there_is_no_git_info(tmp_path: Path) -> None:
    clear_git_cache()
    assert git_info(tmp_path) == (None, None)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_commit_and_dirty_flag_of_a_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True, capture_output=True, text=True,
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    clear_git_cache()
    (tmp_path / "sub").mkdir()
    assert git_info(tmp_path / "sub") == (git("rev-parse", "HEAD"), False)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_info(tmp_path)[1] is False  # cached for the process
    clear_git_cache()
    assert git_info(tmp_path) == (git("rev-parse", "HEAD"), True)
    git("pack-refs", "--all")  # the commit is found in packed-refs too
    clear_git_cache()
    assert git_info(tmp_path)[0] == git("rev-parse", "HEAD")
