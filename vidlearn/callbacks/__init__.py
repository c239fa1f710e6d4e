"""Run-level Lightning pieces the CLI adds to every training: atomic checkpoint files, exact
resume state (random generators, sampler position), a checkpoint on SIGTERM, the files behind a
non-finite loss, one run per output directory, a resume that continues the same setup, and what
the experiment trackers (logger=mlflow, logger=wandb) record beyond Lightning's metrics."""

from vidlearn.callbacks.atomic_io import AtomicCheckpointIO
from vidlearn.callbacks.nonfinite_files import NonFiniteLossFiles
from vidlearn.callbacks.resume_check import ResumeCheck
from vidlearn.callbacks.resume_state import ResumeState
from vidlearn.callbacks.run_dir import RunDirectoryInUseError, claim_run_dir
from vidlearn.callbacks.sigterm import SigtermCheckpoint
from vidlearn.callbacks.tracker import Tracker, failed_on_error

__all__ = [
    "AtomicCheckpointIO",
    "NonFiniteLossFiles",
    "ResumeCheck",
    "ResumeState",
    "RunDirectoryInUseError",
    "SigtermCheckpoint",
    "Tracker",
    "claim_run_dir",
    "failed_on_error",
]
