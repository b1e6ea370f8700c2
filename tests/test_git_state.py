"""A run's git commit and dirty flag: one `git` process per file, the answers `rev-parse HEAD` and
`status --porcelain` give, in every repository state (real git, real repositories)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgraph._code import _git_state

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    ident = ["-c", "user.email=t@t", "-c", "user.name=t"]
    return subprocess.run(["git", "-C", str(repo), *ident, *args], check=True, capture_output=True, text=True).stdout


def two_commands(path: Path) -> tuple[str | None, bool | None]:
    """What the two commands answer (the definition of the recorded fields)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path.parent, capture_output=True, text=True)
    if head.returncode != 0:
        return None, None
    status = subprocess.run(["git", "status", "--porcelain", "--", path.name], cwd=path.parent, capture_output=True)
    return head.stdout.strip(), bool(status.stdout.strip())


@pytest.fixture
def logged_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`git` on PATH is a script that logs its arguments, then runs the real git."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "git.log"
    wrapper = bin_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {GIT} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield log


def states(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A file in each repository state, checked one after the other (the repository changes)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "job.py").write_text("x = 1\n")
    yield "outside a repository", outside / "job.py"
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    job = repo / "job.py"
    job.write_text("x = 1\n")
    yield "no commit yet, untracked", job
    git(repo, "add", "job.py")
    yield "no commit yet, staged", job
    git(repo, "commit", "-qm", "c")
    yield "clean", job
    job.write_text("x = 2\n")
    yield "modified", job
    git(repo, "add", "job.py")
    yield "staged", job
    git(repo, "commit", "-qm", "d")
    (repo / "other.py").write_text("y = 1\n")
    yield "clean, another file untracked", job
    new = repo / "new.py"
    new.write_text("z = 1\n")
    yield "untracked", new
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    yield "detached HEAD", job
    (repo / "sub").mkdir()
    (repo / "sub" / "deep.py").write_text("w = 1\n")
    git(repo, "add", "sub/deep.py")
    git(repo, "commit", "-qm", "e")
    yield "in a sub-folder, clean", repo / "sub" / "deep.py"


def test_git_state_answers_what_rev_parse_and_status_answer(tmp_path: Path) -> None:
    seen = []
    for label, path in states(tmp_path):
        assert _git_state(path) == two_commands(path), label
        seen.append(_git_state(path))
    assert {dirty for _, dirty in seen} == {None, False, True}


def test_git_state_starts_one_git_process(tmp_path: Path, logged_git: Path) -> None:
    """Each git process is a fork and exec before the run's function starts (the cold first run)."""
    for label, path in states(tmp_path):
        logged_git.write_text("")
        _git_state(path)
        assert len(logged_git.read_text().splitlines()) == 1, label
