"""Shared LightningModule logic: steps, per-epoch metrics, optimiser wiring, checkpoint hparams.

A batch is a dict: `input` (B, T, C, H, W) or (B, C, H, W) float, `target` (B,), `index` (B,)
int64 rows of the split, `skipped` (ignored here); uint8 inputs normalised on the device may
come with `peak` (B, T), each frame's maximum, and a batch the loader normalised already (its
clips differed in dtype) with `normalised`. The model maps `input` to (B, num_outputs).
Subclasses say what the loss is, which torchmetrics to keep and how logits become predictions.

Every metric is computed over the whole split at epoch end (torchmetrics syncs its state across
processes in `compute`), never averaged over batches, and logged as `<split>/<name>`.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric, MetricCollection

from vidlearn.data.transforms import NORMALISED
from vidlearn.errors import ConfigError
from vidlearn.tasks.optim import (
    HORIZON_KEY,
    SchedulerRecipe,
    check_layer_decay,
    check_resumed_horizon,
    parameter_groups,
)
from vidlearn.tasks.split_metrics import ExactSplitMetric

logger = logging.getLogger(__name__)

Batch = Mapping[str, Tensor | list[str]]
OptimizerFactory = Callable[[Iterable[dict[str, object]]], Optimizer]
# (inputs (B, ...) on the device, seeds (B,) int64) -> augmented inputs of the same shape
BatchAugment = Callable[[Tensor, Tensor], Tensor]
# (inputs, float targets (B, ...), seeds (B,)) -> mixed inputs and targets (vidlearn.tasks.mix)
BatchMix = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
PlainValue = None | bool | int | float | str | list["PlainValue"] | dict[str, "PlainValue"]
NONFINITE_MODES = ("raise", "skip")


class NonFiniteLossError(RuntimeError):
    """The training loss was NaN or infinite; `indices` are the batch's rows in the train split."""

    def __init__(self, loss: float, indices: list[int]) -> None:
        self.loss = loss
        self.indices = indices
        self.files: list[str] = []
        super().__init__(self._message())

    def name_files(self, files: list[str]) -> None:
        """Add the batch's files to the message; the task itself knows only split indices."""
        self.files = list(files)
        self.args = (self._message(),)

    def _message(self) -> str:
        where = f"files {self.files}" if self.files else f"train-split indices {self.indices}"
        return (
            f"training loss is {self.loss} on the batch with {where}. Check those inputs and "
            "targets for NaN/inf or extreme values, lower optimizer.lr, or set "
            "task.on_nonfinite_loss=skip to skip such batches."
        )


def to_plain(value: object, key: str = "hparams") -> PlainValue:
    """Copy `value` as plain python lists/dicts/scalars (OmegaConf containers included).

    Checkpoints hold the task's hyperparameters; torch.load(weights_only=True) reads only plain
    types, so anything else raises here, naming the offending `key`.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, f"{key}[{k!r}]") for k, v in value.items()}
    if isinstance(value, Sequence):
        return [to_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"task argument {key} is a {type(value).__name__}, which a checkpoint cannot store as "
        "plain data; pass numbers, strings, lists or dicts instead."
    )


class Task(pl.LightningModule):
    """Base of the vidlearn tasks; see the module docstring for the batch contract.

    The arguments below are shared by every task; subclasses take their own explicitly and
    forward these by keyword (`**options`), so conf/task/*.yaml keys and checkpoint hparams
    stay flat. `model` maps inputs to (B, num_outputs); `classes` names the targets (empty for
    regression). `optimizer` is a partial optimiser (Hydra `_partial_: true`) called with parameter groups;
    None is allowed for inference (e.g. `load_from_checkpoint(path, model=model)`).
    `scheduler` is a recipe from `vidlearn.tasks.optim`, or None for a constant rate.
    `classes`, `preprocessing` and `model_config` are stored in the checkpoint's hparams (as
    plain data) so prediction can rebuild the model and its input pipeline.
    `batch_augment` (e.g. `vidlearn.data.device_augment.ClipAffineOnDevice`) augments training
    batches once they are on the device, one draw per item from `batch["seed"]`; it is not
    stored (inference never augments). `normalise` (the DataModule's `batch_normalisation()`)
    turns uint8 batches (and their `peak`, if any) into model inputs on the device, in every
    stage, before augmentation.
    `mix` (`vidlearn.tasks.mix.MixUpCutMix`) mixes training batches after `batch_augment`,
    inputs and labels alike (classification tasks only; not stored either): the loss takes the
    mixed labels, the training metrics each item's dominant label (the argmax of its mix).
    `backbone_lr_scale` scales the learning rate of `model.backbone`; `conv_weight_decay`
    replaces the optimiser's weight decay on convolution weights (None keeps it); `layer_decay`
    (0 < d <= 1, None or 1 = off) scales each layer's rate by d per layer from the head down
    (`vidlearn.tasks.optim.parameter_groups`);
    `on_nonfinite_loss` ("raise" or "skip") says what a NaN/inf training loss does.
    """

    label_kind: ClassVar[str]  # which targets the datamodule must produce
    default_monitor: ClassVar[tuple[str, str]]  # (metric, "min"/"max") for checkpoints

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str] = (),
        *,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerRecipe | None = None,
        backbone_lr_scale: float = 1.0,
        conv_weight_decay: float | None = None,
        layer_decay: float | None = None,
        on_nonfinite_loss: str = "raise",
        preprocessing: Mapping[str, object] | None = None,
        model_config: Mapping[str, object] | None = None,
        batch_augment: BatchAugment | None = None,
        normalise: Callable[[Tensor, Tensor | None], Tensor] | None = None,
        mix: BatchMix | None = None,
    ) -> None:
        super().__init__()
        if mix is not None and not isinstance(self, ClassificationTask):
            raise ConfigError(
                f"mix={type(mix).__name__} mixes class labels, and the {self.label_kind} task "
                "has none to mix: use mix=none."
            )
        if on_nonfinite_loss not in NONFINITE_MODES:
            raise ConfigError(
                f"task.on_nonfinite_loss={on_nonfinite_loss!r} must be one of {NONFINITE_MODES}."
            )
        if backbone_lr_scale <= 0:
            raise ConfigError(
                f"task.backbone_lr_scale={backbone_lr_scale} must be > 0; to keep the backbone "
                "fixed, freeze it (model.freeze_backbone=true) instead."
            )
        if backbone_lr_scale != 1.0 and not isinstance(getattr(model, "backbone", None), nn.Module):
            raise ConfigError(
                f"task.backbone_lr_scale={backbone_lr_scale} needs a model with a `backbone` "
                f"submodule, and {type(model).__name__} has none; set task.backbone_lr_scale=1."
            )
        check_layer_decay(model, layer_decay)
        self.save_hyperparameters(
            ignore=["model", "optimizer", "scheduler", "batch_augment", "normalise", "mix"]
        )
        # Hydra hands lists and dicts over as OmegaConf containers: store plain copies instead.
        self.save_hyperparameters(to_plain(dict(self.hparams)))
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_recipe = scheduler
        # {"epochs", "steps"} a decaying schedule spans: this fit's, and the resumed checkpoint's
        self.schedule_horizon: dict[str, int] | None = None
        self.saved_horizon: dict[str, int] | None = None
        self.batch_augment = batch_augment
        self.normalise = normalise
        self.mix = mix
        self.classes: list[str] = list(self.hparams.classes)
        metrics = self.build_metrics()
        # why each metric can be NaN, logged once per logged name (see _report_undefined)
        self.undefined_because = {
            name: metric.undefined_because
            for name, metric in metrics.items()
            if isinstance(metric, ExactSplitMetric)
        }
        self.reported_undefined: set[str] = set()
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    @property
    @abstractmethod
    def num_outputs(self) -> int:
        """Width of the model output this task expects."""

    @abstractmethod
    def build_metrics(self) -> MetricCollection:
        """The metrics of one split, updated with `metric_inputs(logits, target)`."""

    @abstractmethod
    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar training loss of logits (B, num_outputs) against target (B,)."""

    @abstractmethod
    def metric_inputs(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """(predictions, target) in the form `build_metrics()`'s metrics take."""

    @abstractmethod
    def predictions(self, logits: Tensor) -> dict[str, Tensor]:
        """What `predict_step` returns for each item, beside `index`."""

    def summarize(self, split: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """Turn the computed metric values of `split` into the scalars to log."""
        return values

    def forward(self, inputs: Tensor) -> Tensor:  # (B, T, C, H, W) or (B, C, H, W)
        return self.model(inputs)  # (B, num_outputs)

    def on_after_batch_transfer(self, batch: Batch | Tensor, dataloader_idx: int) -> Batch | Tensor:
        if isinstance(batch, Tensor):  # example_input_array for the model summary: prepared already
            return batch
        return self.prepare_batch(batch, training=self.trainer.training)

    def prepare_batch(self, batch: Batch, training: bool) -> Batch:
        """Normalise uint8 batches, then augment training batches, on the device, if asked
        (`ClassificationTask` then mixes them)."""
        if self.normalise is not None and batch.get(
            NORMALISED
        ):  # mixed dtypes, see HandOverCollate
            batch = {key: value for key, value in batch.items() if key != NORMALISED}
        elif self.normalise is not None:
            # `peak` (B, T): per-frame maxima, with per-frame max normalisation
            batch = {**batch, "input": self.normalise(batch["input"], batch.get("peak"))}
        if self.batch_augment is not None and training:
            batch = {**batch, "input": self.batch_augment(batch["input"], batch["seed"])}
        return batch

    def setup(self, stage: str) -> None:
        """Refuse skipping non-finite steps under several processes (ranks would fall out of step)."""
        if self.hparams.on_nonfinite_loss == "skip" and self.trainer.world_size > 1:
            raise ConfigError(
                "task.on_nonfinite_loss=skip works on one device only: a step skipped on one "
                "process but not the others hangs distributed training. Use 'raise'."
            )

    def training_step(self, batch: Batch, batch_index: int) -> Tensor | None:
        logits = self._logits(batch)  # (B, num_outputs)
        loss = self.compute_loss(logits, batch.get("mixed_target", batch["target"]))
        if not torch.isfinite(loss):
            error = NonFiniteLossError(loss.item(), batch["index"].tolist())
            if self.hparams.on_nonfinite_loss == "raise":
                raise error
            logger.warning("%s Step skipped (task.on_nonfinite_loss=skip).", error)
            return None  # Lightning then skips backward and the optimiser step
        self._update("train", logits.detach(), batch["target"], loss.detach())
        self.log("train/loss_step", loss.detach(), prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: Batch, batch_index: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_index: int) -> None:
        self._evaluate("test", batch)

    def predict_step(self, batch: Batch, batch_index: int) -> dict[str, Tensor]:
        """Per-item outputs (see the subclass's `predictions`) and the item's `index`."""
        return {"index": batch["index"], **self.predictions(self._logits(batch))}

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        self._check_scheduler_monitor()

    def _check_scheduler_monitor(self) -> None:
        """A ConfigError naming scheduler.monitor when the metric a plateau scheduler steps on
        was not logged by the end of the epoch, where Lightning would stop with an error that
        names no config key."""
        monitor = getattr(self.scheduler_recipe, "monitor", None)
        if monitor is None or monitor in self.trainer.callback_metrics:
            return
        logged = ", ".join(sorted(self.trainer.callback_metrics)) or "none"
        raise ConfigError(
            f"scheduler.monitor={monitor} is not a metric this run logs by the end of an epoch; "
            f"logged: {logged}. Set scheduler.monitor= one of them (e.g. val/loss)."
        )

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> Optimizer | dict[str, object]:
        """The optimiser over `parameter_groups`, and the scheduler recipe's scheduler if any."""
        if self.optimizer_factory is None:
            raise ValueError(
                "this task was built without an optimizer; pass optimizer=<partial optimiser> "
                "(conf/optimizer) to train it."
            )
        groups = parameter_groups(
            self.model,
            self.hparams.backbone_lr_scale,
            self.hparams.conv_weight_decay,
            self.hparams.layer_decay,
        )
        optimizer = self.optimizer_factory(groups)
        for group in optimizer.param_groups:
            group["lr"] *= group["lr_scale"]
        if self.scheduler_recipe is None:
            return optimizer
        recipe = self.scheduler_recipe
        steps = self.trainer.estimated_stepping_batches  # inf without an epoch or step limit
        if not math.isfinite(steps):
            if recipe.needs_horizon:
                raise ConfigError(
                    f"trainer.max_epochs={self.trainer.max_epochs} (no limit) cannot go with "
                    f"the {type(recipe).__name__} scheduler, which decays over a known number "
                    "of epochs: set trainer.max_epochs, or choose scheduler=plateau or "
                    "scheduler=none."
                )
            steps = 0
        epochs = max(self.trainer.max_epochs or 0, 0)
        scheduler = recipe.build(optimizer, total_steps=int(steps), total_epochs=epochs)
        if recipe.needs_horizon:
            self.schedule_horizon = {"epochs": epochs, "steps": int(steps)}
            self._check_resumed_horizon()
        config: dict[str, object] = {"scheduler": scheduler, "interval": recipe.interval}
        if recipe.monitor is not None:
            config["monitor"] = recipe.monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.schedule_horizon is not None:
            checkpoint[HORIZON_KEY] = self.schedule_horizon

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.saved_horizon = checkpoint.get(HORIZON_KEY)
        self._check_resumed_horizon()

    def _check_resumed_horizon(self) -> None:
        """Refuse a resume over another schedule length, once both lengths are known (fit loads
        the checkpoint before configure_optimizers, or after it with some strategies)."""
        if self.schedule_horizon is not None and self.saved_horizon is not None:
            check_resumed_horizon(self.saved_horizon, self.schedule_horizon, self.scheduler_recipe)

    def _logits(self, batch: Batch) -> Tensor:
        logits = self.model(batch["input"])
        expected = (len(batch["index"]), self.num_outputs)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"the model returned outputs of shape {tuple(logits.shape)}, but the "
                f"{self.label_kind} task needs (batch size, num_outputs) = {expected}; build "
                f"the model with num_outputs={self.num_outputs}."
            )
        return logits  # (B, num_outputs)

    def _evaluate(self, split: str, batch: Batch) -> None:
        logits = self._logits(batch)  # (B, num_outputs)
        self._update(split, logits, batch["target"], self.compute_loss(logits, batch["target"]))

    def _update(self, split: str, logits: Tensor, target: Tensor, loss: Tensor) -> None:
        getattr(self, f"{split}_loss").update(loss, weight=len(target))
        getattr(self, f"{split}_metrics").update(*self.metric_inputs(logits, target))

    def _log_epoch(self, split: str) -> None:
        metrics: MetricCollection = getattr(self, f"{split}_metrics")
        losses: MeanMetric = getattr(self, f"{split}_loss")
        if not losses.update_called:
            return  # every step of the epoch was skipped (non-finite loss): nothing to report
        values = {f"{split}/loss": losses.compute(), **self.summarize(split, metrics.compute())}
        metrics.reset()
        losses.reset()
        # The values are already global; sync_dist only stops Lightning warning under DDP.
        shown = {f"{split}/loss", self.default_monitor[0]}
        for name, value in values.items():
            self.log(name, value, prog_bar=name in shown, sync_dist=True)
        self._report_undefined(split, values)

    def _report_undefined(self, split: str, values: dict[str, Tensor]) -> None:
        """Warn once per metric that is NaN because the split leaves it undefined."""
        for name, reason in self.undefined_because.items():
            logged = f"{split}/{name}"
            value = values.get(logged)
            if value is None or not torch.isnan(value) or logged in self.reported_undefined:
                continue
            self.reported_undefined.add(logged)
            logger.warning(
                "%s is NaN: %s. A NaN never counts as the best checkpoint nor as an improvement "
                "for early stopping; if it is the monitor, choose one this split defines "
                "(e.g. monitor=%s/loss).",
                logged,
                reason,
                split,
            )


class ClassificationTask(Task):
    """A Task whose metrics include a confusion matrix named "confusion" (rows: true class).

    At each epoch end the matrix of each split is kept in `self.confusion[split]`, a (K, K)
    int64 tensor for plotting (subclasses create the empty dict), and turned into `balanced_accuracy` (the mean recall over classes
    present in the split, as sklearn's balanced_accuracy_score) and `recall/<class name>`.
    Its labels can be mixed (`mix`): `soft_targets` turns them into float rows that mix
    linearly, and `compute_loss` takes those rows as well as the labels.
    """

    def prepare_batch(self, batch: Batch, training: bool) -> Batch:
        """`Task.prepare_batch`, then mix training batches if asked: the mixed float targets go
        in `mixed_target`, each item's dominant label in `target`."""
        batch = super().prepare_batch(batch, training)
        if self.mix is None or not training:
            return batch
        inputs, mixed = self.mix(batch["input"], self.soft_targets(batch["target"]), batch["seed"])
        return {**batch, "input": inputs, "mixed_target": mixed, "target": self.hard_targets(mixed)}

    @abstractmethod
    def soft_targets(self, target: Tensor) -> Tensor:
        """The labels (B,) as float targets (B, ...) that mixing blends linearly."""

    @abstractmethod
    def hard_targets(self, soft: Tensor) -> Tensor:
        """The dominant label (B,) of each mixed target, in the dtype of the task's labels."""

    def summarize(self, split: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
        confusion = values.pop(f"{split}/confusion")  # (K, K): [true, predicted]
        self.confusion[split] = confusion.detach().cpu()
        support = confusion.sum(dim=1)  # (K,) items per true class
        recall = confusion.diag() / support.clamp(min=1)  # (K,)
        present = support > 0
        values[f"{split}/balanced_accuracy"] = recall[present].float().mean()
        for name, value, has_items in zip(self.classes, recall, present, strict=True):
            if has_items:
                values[f"{split}/recall/{name}"] = value.float()
        return values
