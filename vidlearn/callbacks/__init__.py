"""Run-level Lightning pieces the CLI adds to every training: atomic checkpoint files, exact
resume state (random generators, sampler position), a checkpoint on SIGTERM, the files behind a
non-finite loss, one run per output directory, and a resume that continues the same setup."""

from vidlearn.callbacks.atomic_io import AtomicCheckpointIO
from vidlearn.callbacks.nonfinite_files import NonFiniteLossFiles
from vidlearn.callbacks.resume_check import ResumeCheck
from vidlearn.callbacks.resume_state import ResumeState
from vidlearn.callbacks.run_dir import RunDirectoryInUseError, claim_run_dir
from vidlearn.callbacks.sigterm import SigtermCheckpoint

__all__ = [
    "AtomicCheckpointIO",
    "NonFiniteLossFiles",
    "ResumeCheck",
    "ResumeState",
    "RunDirectoryInUseError",
    "SigtermCheckpoint",
    "claim_run_dir",
]
