"""Which code produced a run: the git commit and whether the tree was dirty.

Why not ``git rev-parse`` per run: spawning git costs milliseconds, more than a
whole run's bookkeeping. The commit is read from ``.git`` files directly; the
dirty flag needs ``git status`` once, and the answer is cached per process and
repository (a process runs one version of the code).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

__all__ = ["git_info"]

_CACHE: dict[str, tuple[str | None, bool | None]] = {}
_LOCK = threading.Lock()


def git_info(path: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the repository holding ``path`` (default: cwd).

    ``(None, None)`` outside a repository; ``dirty`` is ``None`` when the git
    binary is missing or too slow to answer. Cached per process and repository.
    """
    start = str(path or os.getcwd())
    with _LOCK:
        if start in _CACHE:
            return _CACHE[start]
    top = _find_git_dir(Path(start).resolve())
    if top is None:
        with _LOCK:
            _CACHE[start] = (None, None)
        return None, None
    worktree, git_dir = top
    key = str(worktree)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    commit = _read_head(git_dir)
    dirty = _is_dirty(worktree) if commit else None
    with _LOCK:
        _CACHE[key] = _CACHE[start] = (commit, dirty)
    return commit, dirty


def clear_git_cache() -> None:
    """Forget cached answers (tests, or a long-lived process after a checkout)."""
    with _LOCK:
        _CACHE.clear()


def _find_git_dir(start: Path) -> tuple[Path, Path] | None:
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return folder, dot
        if dot.is_file():  # worktree or submodule: "gitdir: <path>"
            try:
                text = dot.read_text().strip()
            except OSError:
                return None
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return folder, (target if target.is_absolute() else (folder / target).resolve())
            return None
    return None


def _read_head(git_dir: Path) -> str | None:
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head if _is_sha(head) else None
    ref = head[4:].strip()
    # A linked worktree keeps HEAD locally but refs in the common dir.
    dirs = [git_dir]
    common = git_dir / "commondir"
    if common.is_file():
        try:
            dirs.append((git_dir / common.read_text().strip()).resolve())
        except OSError:
            pass
    for base in dirs:
        try:
            value = (base / ref).read_text().strip()
            if _is_sha(value):
                return value
        except OSError:
            pass
        try:
            for line in (base / "packed-refs").read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _is_sha(parts[0]):
                    return parts[0]
        except OSError:
            pass
    return None  # unborn branch: no commit yet


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def _is_dirty(worktree: Path) -> bool | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "-C", str(worktree), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return bool(out.stdout.strip())
