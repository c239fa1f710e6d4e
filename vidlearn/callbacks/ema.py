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

Three gaps this subclass closes:

- After fit, vidlearn-train validates and tests the best checkpoint with the same trainer.
  Lightning's callback keeps its averaged model then, so loading that checkpoint put its
  *trained* weights back into the module: validation swapped the average in again, but the test
  split was scored on the trained weights. Dropping the averaged model when fit ends leaves both
  to the checkpoint's `state_dict`, the average.
- A checkpoint saved during validation (SIGTERM there) found the two sets swapped and stored the
  average as the trained weights; it is stored the right way round here.
- Before the first update (`update_starting_at_step` not reached) the "average" is the copy of
  the initial weights: Lightning validated, checkpointed and ended fit with those. Until there
  is an average, the trained weights stand in for it.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging

from vidlearn.errors import ConfigError


class ExponentialMovingAverage(EMAWeightAveraging):
    """EMA of the task's weights, validated and checkpointed as the model; arguments as
    `EMAWeightAveraging`'s, named here so that conf/callbacks/ema.yaml's keys are checked when
    the callback is built (`callbacks.ema.*`), not when fit starts."""

    def __init__(
        self,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        use_buffers: bool = True,
        device: torch.device | str | int | None = None,
    ) -> None:
        # written so that NaN fails: 1 would keep the first copy of the weights for ever
        if not 0.0 <= decay < 1.0:
            raise ConfigError(
                f"callbacks.ema.decay={decay} must be in [0, 1), e.g. 0.999 (an average over "
                "about the last 1 / (1 - decay) steps)."
            )
        if update_every_n_steps < 1:
            raise ConfigError(
                f"callbacks.ema.update_every_n_steps={update_every_n_steps} must be >= 1 "
                "(0 would never average); to train without an average, drop callbacks=ema."
            )
        for name, start in (
            ("update_starting_at_step", update_starting_at_step),
            ("update_starting_at_epoch", update_starting_at_epoch),
        ):
            if start is not None and start < 0:
                raise ConfigError(f"callbacks.ema.{name}={start} must be >= 0 (or null).")
        super().__init__(
            device=device,
            use_buffers=use_buffers,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
        )
        self._swapped = False  # the module holds the average (inside a validation epoch)
        self.ended_with_average = False  # fit ended with the average in the module

    def _averaging(self) -> bool:
        """Fit is running and the average has had its first update."""
        return self._average_model is not None and int(self._average_model.n_averaged) > 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._averaging():
            super().on_validation_epoch_start(trainer, pl_module)
            self._swapped = True

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._swapped:
            super().on_validation_epoch_end(trainer, pl_module)
            self._swapped = False

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.ended_with_average = self._averaging()
        if self.ended_with_average:
            super().on_train_end(trainer, pl_module)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            # validate/test after fit: the module keeps the checkpoint's state_dict, the average
            self._average_model = None
            self._swapped = False

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" not in checkpoint:
            return  # outside fit: the module already holds the average
        if self._swapped:
            checkpoint["state_dict"], checkpoint["current_model_state"] = (
                checkpoint["current_model_state"],
                checkpoint["state_dict"],
            )
        elif not self._averaging():
            # no average yet: the trained weights, also as the average that resume loads
            # (its first update copies the weights anyway)
            checkpoint["state_dict"] = checkpoint["current_model_state"]

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Outside fit the module has loaded the checkpoint's state_dict, the average: keep it
        # (Lightning's callback would warn that it cannot restore its state).
        if self._average_model is not None:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
