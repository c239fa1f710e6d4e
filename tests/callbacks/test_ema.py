"""ExponentialMovingAverage: the average is what is validated, checkpointed, evaluated after fit
and resumed, checked against a reference EMA computed here from the recorded trained weights.

A tiny Linear + BatchNorm model on fixed random tensors, one CPU process, no shuffling: every run
is exactly repeatable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from vidlearn.callbacks import ResumeCheck
from vidlearn.callbacks.ema import ExponentialMovingAverage
from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import averaged

DECAY = 0.5  # far from 1, so a few steps move the average well away from the trained weights
STEPS_PER_EPOCH = 4


class TinyTask(pl.LightningModule):
    """Linear -> BatchNorm -> Linear regression, trained with SGD; logs val/loss and test/loss."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():  # the same initial weights in every run
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch: list[Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test/loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4 * STEPS_PER_EPOCH, 3, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


def floats(module: nn.Module) -> dict[str, Tensor]:
    """The module's float parameters and buffers, cloned (num_batches_tracked left out)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


class Recorder(pl.Callback):
    """The trained weights after every optimiser step and the weights each validation sees."""

    def __init__(self) -> None:
        self.trained: list[dict[str, Tensor]] = []
        self.validated: list[dict[str, Tensor]] = []
        self.tested: list[dict[str, Tensor]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.trained.append(floats(pl_module))

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.validated.append(floats(pl_module))

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.tested.append(floats(pl_module))


def reference_ema(trained: list[dict[str, Tensor]], decay: float = DECAY) -> dict[str, Tensor]:
    """The first step's weights, then average = decay * average + (1 - decay) * weights."""
    average = dict(trained[0])
    for weights in trained[1:]:
        average = {k: decay * average[k] + (1 - decay) * weights[k] for k in average}
    return average


def assert_close(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() <= b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=f"{name} differs")


def differ(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    return any(not torch.allclose(a[k], b[k]) for k in a)


def fit(
    folder: Path,
    epochs: int,
    *extra: pl.Callback,
    resume: str | None = None,
    ema: pl.Callback | None = None,
) -> tuple[pl.Trainer, TinyTask, Recorder]:
    recorder = Recorder()
    task = TinyTask()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[
            ema or ExponentialMovingAverage(decay=DECAY),
            recorder,
            *extra,
            ModelCheckpoint(dirpath=folder, monitor="val/loss", filename="best"),
            ModelCheckpoint(dirpath=folder, filename="last", enable_version_counter=False),
        ],
    )
    trainer.fit(task, loader(0), loader(1), ckpt_path=resume)
    return trainer, task, recorder


def read(path: Path | str) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def strip(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if v.is_floating_point()}


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TinyTask, Recorder]:
    folder = tmp_path_factory.mktemp("ema")
    _, task, recorder = fit(folder, epochs=2)
    return folder, task, recorder


def test_the_checkpoint_state_dict_is_the_average_and_keeps_the_trained_weights(
    two_epochs: tuple[Path, TinyTask, Recorder],
) -> None:
    folder, _, recorder = two_epochs
    checkpoint = read(folder / "last.ckpt")
    assert len(recorder.trained) == 2 * STEPS_PER_EPOCH
    expected = reference_ema(recorder.trained)  # BatchNorm's running mean and var included
    assert_close(expected, strip(checkpoint["state_dict"]))
    assert_close(recorder.trained[-1], strip(checkpoint["current_model_state"]))
    assert differ(expected, recorder.trained[-1])
    assert averaged(checkpoint)  # what the tools report as averaged_weights


def test_validation_runs_on_the_average(two_epochs: tuple[Path, TinyTask, Recorder]) -> None:
    _, _, recorder = two_epochs
    first_epoch = recorder.trained[:STEPS_PER_EPOCH]
    assert_close(reference_ema(first_epoch), recorder.validated[0])
    assert differ(recorder.validated[0], first_epoch[-1])


def test_the_monitored_metric_is_the_averages(
    two_epochs: tuple[Path, TinyTask, Recorder],
) -> None:
    folder, _, _ = two_epochs
    checkpoint = read(folder / "last.ckpt")
    averaged = TinyTask().eval()
    averaged.load_state_dict(checkpoint["state_dict"])
    x, y = loader(1).dataset.tensors
    with torch.no_grad():
        loss = nn.functional.mse_loss(averaged(x), y)  # one batch of 16 = the logged mean of 4
    logged = checkpoint["callbacks"][next(k for k in checkpoint["callbacks"] if "val/loss" in k)]
    torch.testing.assert_close(logged["current_score"], loss)


def test_the_module_holds_the_average_when_fit_ends(
    two_epochs: tuple[Path, TinyTask, Recorder],
) -> None:
    _, task, recorder = two_epochs
    assert_close(reference_ema(recorder.trained), floats(task))


def test_validate_and_test_after_fit_run_on_the_checkpoints_average(tmp_path: Path) -> None:
    """As vidlearn-train does: fit, then validate and test the best checkpoint with the trainer.

    Lightning's own EMAWeightAveraging failed it: test ran on the trained weights (its
    on_load_checkpoint reloaded current_model_state and only validation swaps the average in).
    """
    trainer, task, recorder = fit(tmp_path, epochs=2)
    best = trainer.checkpoint_callback.best_model_path
    assert Path(best).name == "best.ckpt"
    average = strip(read(best)["state_dict"])
    recorder.validated.clear()
    trainer.validate(task, loader(1), ckpt_path=best, verbose=False)
    trainer.test(task, loader(1), ckpt_path=best, verbose=False)
    assert_close(average, recorder.validated[0])
    assert_close(average, recorder.tested[0])


def test_resume_continues_the_trained_weights_and_the_average(
    two_epochs: tuple[Path, TinyTask, Recorder], tmp_path: Path
) -> None:
    folder, _, _ = two_epochs
    fit(tmp_path / "first", epochs=1)
    fit(tmp_path / "resumed", epochs=2, resume=str(tmp_path / "first" / "last.ckpt"))
    straight, resumed = read(folder / "last.ckpt"), read(tmp_path / "resumed" / "last.ckpt")
    for key in ("state_dict", "current_model_state", "averaging_state"):
        assert_close(strip(straight[key]), strip(resumed[key]))
    assert int(resumed["averaging_state"]["n_averaged"]) == 2 * STEPS_PER_EPOCH


class SaveDuringValidation(pl.Callback):
    """Save a checkpoint in the middle of the first validation, as SigtermCheckpoint may."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if not self.path.exists():
            trainer.save_checkpoint(self.path)


def test_a_checkpoint_saved_during_validation_keeps_the_two_apart(tmp_path: Path) -> None:
    """Lightning's own callback stored the average as the trained weights and vice versa here."""
    _, _, recorder = fit(tmp_path, 1, SaveDuringValidation(tmp_path / "during.ckpt"))
    checkpoint = read(tmp_path / "during.ckpt")
    assert_close(reference_ema(recorder.trained), strip(checkpoint["state_dict"]))
    assert_close(recorder.trained[-1], strip(checkpoint["current_model_state"]))


def test_before_averaging_starts_the_trained_weights_stand_in(tmp_path: Path) -> None:
    """update_starting_at_step past the run: validated, checkpointed and final weights are the
    trained ones. Lightning's own callback used the initial weights, the copy it averages into."""
    late = ExponentialMovingAverage(decay=DECAY, update_starting_at_step=100)
    _, task, recorder = fit(tmp_path, 1, ema=late)
    trained = recorder.trained[-1]
    assert_close(trained, recorder.validated[0])
    checkpoint = read(tmp_path / "last.ckpt")
    assert_close(trained, strip(checkpoint["state_dict"]))
    assert not averaged(checkpoint)
    assert_close(trained, floats(task))


def test_resume_before_averaging_starts_averages_from_the_start_step(tmp_path: Path) -> None:
    """The first update after the resume copies the weights, as in one uninterrupted run."""
    starting_at = STEPS_PER_EPOCH + 1  # in the second epoch

    def late() -> ExponentialMovingAverage:
        return ExponentialMovingAverage(decay=DECAY, update_starting_at_step=starting_at)

    _, _, straight = fit(tmp_path / "straight", 2, ema=late())
    fit(tmp_path / "first", 1, ema=late())
    fit(tmp_path / "resumed", 2, ema=late(), resume=str(tmp_path / "first" / "last.ckpt"))
    expected = reference_ema(straight.trained[starting_at:])
    assert_close(expected, strip(read(tmp_path / "resumed" / "last.ckpt")["state_dict"]))


@pytest.mark.parametrize("averaging_then", [True, False], ids=["ema-then", "ema-now"])
def test_resume_refuses_to_switch_averaging_on_or_off(tmp_path: Path, averaging_then: bool) -> None:
    """Without the callback, resuming an averaged run would train on from the average (its
    state_dict); with it, from a run that never averaged, the average would start mid-run."""
    first = ExponentialMovingAverage(decay=DECAY) if averaging_then else pl.Callback()
    fit(tmp_path / "first", 1, ema=first)
    resume = str(tmp_path / "first" / "last.ckpt")
    now = pl.Callback() if averaging_then else ExponentialMovingAverage(decay=DECAY)
    with pytest.raises(ConfigError, match="callbacks=ema"):
        fit(tmp_path / "resumed", 2, ResumeCheck(resume), ema=now, resume=resume)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        (dict(decay=1.5), "decay"),
        (dict(decay=-0.1), "decay"),
        (dict(update_every_n_steps=0), "update_every_n_steps"),
        (dict(update_starting_at_step=-1), "update_starting_at_step"),
    ],
)
def test_out_of_range_options_are_config_errors_naming_the_key(options: dict, key: str) -> None:
    """Failed before the fix: update_every_n_steps=0 never averaged, silently, and a decay
    outside [0, 1] was torch's ValueError naming no config key."""
    with pytest.raises(ConfigError, match=rf"callbacks\.ema\.{key}="):
        ExponentialMovingAverage(**options)


def test_a_misspelt_option_is_refused_when_the_callback_is_built() -> None:
    """Failed before the fix: the keyword reached AveragedModel only when fit started."""
    with pytest.raises(TypeError, match="decya"):
        ExponentialMovingAverage(decya=0.9)
