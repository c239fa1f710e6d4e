"""Provenance of a run: the git state is that of the checkout vidlearn runs from, if any."""

import subprocess
from pathlib import Path

import pytest

from vidlearn.cli.run_files import git_state


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one committed file, code.py."""
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "commit", "-q", "-m", "code")
    return tmp_path


def test_git_state_gives_the_commit_of_the_checkout_tracking_the_file(repo: Path) -> None:
    assert git_state(repo / "code.py") == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}


def test_git_state_ignores_a_repository_that_does_not_track_the_file(repo: Path) -> None:
    # A wheel installed into a venv inside the user's own project repository.
    installed = repo / ".venv" / "site-packages" / "vidlearn" / "cli" / "run_files.py"
    installed.parent.mkdir(parents=True)
    installed.write_text("")
    assert git_state(installed) is None
