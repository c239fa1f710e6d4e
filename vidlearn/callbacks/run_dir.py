"""One run per output directory: refuse a folder that already holds a run or is being written.

Two runs started in the same second get the same default `hydra.run.dir` (a timestamp), and a
rerun with an explicit `paths.output_dir` points at an old run: either would overwrite the
other's config, metrics and checkpoints. `claim_run_dir` refuses both before anything is
written, except when `resume=` names that same directory (continuing it in place).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from pytorch_lightning.utilities import rank_zero_only

from vidlearn.errors import UserError

LOCK_NAME = ".vidlearn.lock"
RUN_MARKERS = ("summary.json", "checkpoints/last.ckpt")


class RunDirectoryInUseError(UserError, RuntimeError):
    """The output directory holds a finished run or is locked by a running one."""


class RunDirectoryClaim:
    """An exclusive lock on `run_dir` (released by `release` or when the process dies)."""

    def __init__(self, run_dir: Path, lock: IO[bytes] | None) -> None:
        self.run_dir = run_dir
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None

    def __enter__(self) -> RunDirectoryClaim:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def claim_run_dir(run_dir: str | Path, resume: str | None = None) -> RunDirectoryClaim:
    """Make `run_dir` and lock it for this run; RunDirectoryInUseError when another run has it.

    Only global rank 0 locks (every rank of one DDP run shares the folder); the other ranks get
    a claim that holds nothing.
    """
    run_dir = Path(run_dir)
    if rank_zero_only.rank != 0:
        return RunDirectoryClaim(run_dir, None)
    resuming_here = bool(resume) and _same_folder(Path(resume).expanduser(), run_dir)
    found = [marker for marker in RUN_MARKERS if (run_dir / marker).exists()]
    if found and not resuming_here:
        raise RunDirectoryInUseError(
            f"{run_dir} already holds a run ({', '.join(found)}); refusing to overwrite it. "
            f"Choose another paths.output_dir (or hydra.run.dir), or continue that run with "
            f"resume={run_dir}."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = open(run_dir / LOCK_NAME, "wb")  # noqa: SIM115  (held open for the whole run)
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RunDirectoryInUseError(
            f"{run_dir} is being written by another running vidlearn-train (it holds "
            f"{run_dir / LOCK_NAME}); wait for it to finish or choose another paths.output_dir."
        ) from None
    lock.write(str(os.getpid()).encode())
    lock.flush()
    return RunDirectoryClaim(run_dir, lock)


def _same_folder(resume: Path, run_dir: Path) -> bool:
    """Whether `resume` (a run directory or a checkpoint inside one) belongs to `run_dir`."""
    return run_folder(resume).resolve() == run_dir.resolve()


def run_folder(resume: Path) -> Path:
    """The run directory of `resume=`: the directory itself, or the one holding the checkpoint
    (`<run>/checkpoints/<name>.ckpt`)."""
    return resume if resume.is_dir() or resume.suffix != ".ckpt" else resume.parent.parent
