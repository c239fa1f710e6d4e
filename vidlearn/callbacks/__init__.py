"""Run-level Lightning pieces the CLI adds to every training: atomic checkpoint files, exact
resume state (random generators, sampler position) and a checkpoint on SIGTERM."""

from vidlearn.callbacks.atomic_io import AtomicCheckpointIO
from vidlearn.callbacks.resume_state import ResumeState
from vidlearn.callbacks.sigterm import SigtermCheckpoint

__all__ = ["AtomicCheckpointIO", "ResumeState", "SigtermCheckpoint"]
