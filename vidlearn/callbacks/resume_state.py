"""What Lightning's checkpoints lack for an exact resume: random generators and sampler position.

Lightning restores weights, optimiser, scheduler, epoch and step. This callback adds the states
of Python's `random`, NumPy's and torch's generators, the CPU's and, where CUDA is available,
every GPU's (what runs in the main process draws from them: dropout, on the GPU from the GPU's
generator, new layers' initialisation; clip sampling and augmentation do not, each item has its
own generator from its sample key). GPU states are restored only when the resuming process sees
as many GPUs as the saving one; otherwise a warning says the GPU draws will differ and sets the training sampler's position from the
batches done: a DataLoader fetches indices ahead of the batch being trained (the fetcher one
batch, workers `prefetch_factor` each, possibly to the end of the epoch), so the sampler's own
count says nothing about them. Exact with workers and augmentation, mid-epoch included.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

logger = logging.getLogger(__name__)


class ResumeState(pl.Callback):
    """Save and restore random states; save `yielded` = batches completed x batch size."""

    def state_dict(self) -> dict[str, Any]:
        # Plain lists and tensors only, so checkpoints still load with torch.load(weights_only=True).
        name, keys, position, has_gauss, gauss = np.random.get_state()
        state = {
            "python": random.getstate(),
            "torch": torch.get_rng_state(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()  # one ByteTensor per visible GPU
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        torch.set_rng_state(state_dict["torch"])
        name, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        saved = state_dict.get("cuda")
        if saved is None:
            return
        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if visible == len(saved):
            torch.cuda.set_rng_state_all(saved)
        else:
            logger.warning(
                "resume: the checkpoint holds the random states of %d CUDA devices but this "
                "process sees %d; the GPUs' generators are not restored, so GPU random draws "
                "(dropout) differ from an uninterrupted run.",
                len(saved),
                visible,
            )

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        datamodule = trainer.datamodule
        state = checkpoint.get(type(datamodule).__qualname__, {}).get("train_sampler")
        if not state:
            return
        # `processed`, not `completed`: a checkpoint written in on_train_batch_end (every n
        # steps) sees the batch processed but not yet completed, and Lightning counts it as done
        # when it restarts there.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        if done >= trainer.num_training_batches:
            # The epoch is complete: resume at the next one's start. Lightning creates the
            # resumed loader's iterator before it calls set_epoch, and worker processes fetch
            # indices at once, so the sampler must already hold the epoch to draw.
            state.update(epoch=state["epoch"] + 1, yielded=0)
        elif done > 0:
            # Not the sampler's own count: workers may have fetched to the end of the epoch
            # already, and a finished sequence counts 0 again.
            state["yielded"] = done * datamodule.batch_size
