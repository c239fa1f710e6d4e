"""What Lightning's checkpoints lack for an exact resume: random generators and sampler position.

Lightning restores weights, optimiser, scheduler, epoch and step. This callback adds the states
of Python's `random`, NumPy's and torch's generators (clip sampling, augmentation and dropout
draw from them) and corrects the training sampler's position: a DataLoader fetches indices ahead
of the batch being trained (the fetcher one batch, workers `prefetch_factor` each), so the
sampler's own `yielded` count overstates the batches done. Exact with `data.num_workers=0`;
with workers each worker re-seeds from the restored torch generator.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


class ResumeState(pl.Callback):
    """Save and restore random states; save `yielded` = batches completed x batch size."""

    def state_dict(self) -> dict[str, Any]:
        # Plain lists and tensors only, so checkpoints still load with torch.load(weights_only=True).
        name, keys, position, has_gauss, gauss = np.random.get_state()
        return {
            "python": random.getstate(),
            "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        torch.set_rng_state(state_dict["torch"])
        name, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        datamodule = trainer.datamodule
        state = checkpoint.get(type(datamodule).__qualname__, {}).get("train_sampler")
        if not state or not state.get("yielded"):
            return  # no sampler state, or the epoch's sequence is exhausted
        done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        state["yielded"] = min(done * datamodule.batch_size, state["yielded"])
