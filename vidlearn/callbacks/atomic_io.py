"""Checkpoint files written to a temporary file beside the target, then renamed over it.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temporary file lives in
$TMPDIR; when that is another file system than the run directory the final move is a copy, and a
kill during it leaves a truncated last.ckpt. A rename within one directory is atomic on POSIX.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """`save_checkpoint` leaves either the old file or the complete new one, never a partial one."""

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except OSError as error:  # a full disk, a quota, a lost mount
            Path(temporary).unlink(missing_ok=True)
            raise OSError(
                error.errno,
                f"could not write checkpoint {target} ({error.strerror or error}); the previous "
                f"{target.name}, if any, is unchanged. Free space or fix the folder, then continue "
                f"with resume={target.parent.parent}",
            ) from error
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
