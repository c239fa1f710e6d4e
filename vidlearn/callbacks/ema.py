"""Exponential moving average (EMA) of the weights: Lightning's `EMAWeightAveraging`, fixed for
how vidlearn-train uses a trainer after fit and for a checkpoint saved mid-validation.

What Lightning's callback does (2.6), and vidlearn relies on:

- After every optimiser step it updates an `AveragedModel`, a deep copy of the task: the first
  update copies the weights, later ones `average = decay * average + (1 - decay) * weights`, for
  the parameters and, with `use_buffers` (the default), the buffers (BatchNorm's running mean and
  variance; its integer `num_batches_tracked` is truncated, unused in eval mode).
- Validation runs on the average: it swaps the two sets of values at the validation epoch's start
  and back at its end, so the logged metrics, hence ModelCheckpoint's and EarlyStopping's
  monitor, are the averaged model's.
- Every checkpoint holds the average as `state_dict` (what vidlearn-eval, -predict and -export
  load), the trained weights as `current_model_state` and the average's count as
  `averaging_state`; resuming fit restores both. At the end of fit the module gets the average.

Two gaps this subclass closes:

- After fit, vidlearn-train validates and tests the best checkpoint with the same trainer.
  Lightning's callback keeps its averaged model then, so loading that checkpoint put its
  *trained* weights back into the module: validation swapped the average in again, but the test
  split was scored on the trained weights. Dropping the averaged model when fit ends leaves both
  to the checkpoint's `state_dict`, the average.
- A checkpoint saved during validation (SIGTERM there) found the two sets swapped and stored the
  average as the trained weights; it is stored the right way round here.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging


class ExponentialMovingAverage(EMAWeightAveraging):
    """EMA of the task's weights, validated and checkpointed as the model; arguments as
    `EMAWeightAveraging` (decay, update_every_n_steps, update_starting_at_step, ...)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._swapped = False  # the module holds the average (inside a validation epoch)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_epoch_start(trainer, pl_module)
        self._swapped = self._average_model is not None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_epoch_end(trainer, pl_module)
        self._swapped = False

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            # validate/test after fit: the module keeps the checkpoint's state_dict, the average
            self._average_model = None
            self._swapped = False

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if self._swapped and "current_model_state" in checkpoint:
            checkpoint["state_dict"], checkpoint["current_model_state"] = (
                checkpoint["current_model_state"],
                checkpoint["state_dict"],
            )

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Outside fit the module has loaded the checkpoint's state_dict, the average: keep it
        # (Lightning's callback would warn that it cannot restore its state).
        if self._average_model is not None:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
