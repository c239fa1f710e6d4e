"""Resuming continues exactly: the same final weights as one uninterrupted run (CPU, deterministic)."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import compose_small_train
from omegaconf import DictConfig

from vidlearn.callbacks import AtomicCheckpointIO, ResumeState
from vidlearn.callbacks.resume_check import resume_differences
from vidlearn.cli.train import train
from vidlearn.errors import ConfigError

VIDLEARN_TRAIN = Path(sys.executable).parent / "vidlearn-train"
# 20 training clips in batches of 4: five optimiser steps per epoch, so a stop can land mid-epoch.
TINY = [
    "data.size=32",
    "data.frames=6",
    "data.batch_size=4",
    "trainer.max_epochs=2",
    "trainer.deterministic=true",
    "data.num_workers=0",
    "augment=none",
]
# Worker processes and random augmentation: every item draws from its own (seed, epoch, position)
# key, so neither the workers nor the restart change a draw. last.ckpt every 2 steps: a SIGKILL
# after it lands mid-epoch, with batches already prefetched by the workers.
WORKERS_AUGMENTED = [
    "data.num_workers=2",
    "augment=light",
    "+callbacks.last_checkpoint.every_n_train_steps=2",
]
# Ends fit after the first validation (any finite loss is below the threshold).
STOP_AFTER_FIRST_EPOCH = [
    "+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping",
    "+callbacks.stop.monitor=val/loss",
    "+callbacks.stop.stopping_threshold=1e9",
]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")[
        "state_dict"
    ]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, demo_videos: Path) -> Path:
    """The two-epoch TINY run that every resumed run must match; trained once, only read."""
    output = tmp_path_factory.mktemp("uninterrupted")
    run = output / "uninterrupted"
    train(
        compose_small_train(
            output, f"data.manifest={demo_videos}", *TINY, f"paths.output_dir={run}"
        )
    )
    return run


def test_resume_after_one_epoch_reaches_the_same_weights(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path, uninterrupted: Path
) -> None:
    first, resumed = tmp_path / "first", tmp_path / "resumed"
    summary = train(
        compose_train(
            f"data.manifest={demo_videos}",
            *TINY,
            *STOP_AFTER_FIRST_EPOCH,
            f"paths.output_dir={first}",
        )
    )
    assert summary["epochs"] == 1
    summary = train(
        compose_train(
            f"data.manifest={demo_videos}", *TINY, f"resume={first}", f"paths.output_dir={resumed}"
        )
    )
    assert summary["epochs"] == 2
    assert_same_weights(final_weights(uninterrupted), final_weights(resumed))


def test_checkpoint_save_interrupted_midway_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # e.g. a signal while torch.save is writing

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left behind


def start_cli(run: Path, manifest: Path, cache: Path, *extra: str) -> subprocess.Popen:
    args = [
        str(VIDLEARN_TRAIN),
        f"data.manifest={manifest}",
        f"paths.cache_dir={cache}",
        *TINY,
        "~callbacks.progress_bar",
        f"hydra.run.dir={run}",
        *extra,
    ]
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_run_resumes_to_the_same_weights(
    demo_videos: Path, tmp_path: Path, uninterrupted: Path, kill: signal.Signals
) -> None:
    killed, resumed = tmp_path / "killed", tmp_path / "resumed"
    process = start_cli(killed, demo_videos, tmp_path / "cache")
    wait_for(killed / "checkpoints" / "last.ckpt", process)
    process.send_signal(kill)
    output, _ = process.communicate(timeout=300)
    if kill == signal.SIGTERM:
        assert process.returncode == 0, output[-3000:]
        assert "SIGTERM: saved" in output
    torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)  # complete, loadable
    resume = start_cli(resumed, demo_videos, tmp_path / "cache", f"resume={killed}")
    assert resume.wait(timeout=300) == 0, resume.stdout.read()[-3000:]
    assert_same_weights(final_weights(uninterrupted), final_weights(resumed))


@pytest.mark.slow
def test_run_killed_mid_epoch_with_workers_and_augmentation_resumes_to_the_same_weights(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path
) -> None:
    uninterrupted, killed, resumed = (tmp_path / name for name in ("whole", "killed", "resumed"))
    train(
        compose_train(
            f"data.manifest={demo_videos}",
            *TINY,
            *WORKERS_AUGMENTED,
            f"paths.output_dir={uninterrupted}",
        )
    )
    process = start_cli(killed, demo_videos, tmp_path / "cache", *WORKERS_AUGMENTED)
    wait_for(killed / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=300)
    stopped_at = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert stopped_at["global_step"] % 5 != 0  # mid-epoch (five steps per epoch)
    resume = start_cli(
        resumed, demo_videos, tmp_path / "cache", *WORKERS_AUGMENTED, f"resume={killed}"
    )
    assert resume.wait(timeout=300) == 0, resume.stdout.read()[-3000:]
    assert_same_weights(final_weights(uninterrupted), final_weights(resumed))


def saved_sampler_state(sampler_state: dict, processed: int, batches: int = 5) -> dict:
    """The sampler state ResumeState writes into a checkpoint after `processed` of `batches`."""

    datamodule = SimpleNamespace(batch_size=4)  # checkpoints key its state by class name
    key = type(datamodule).__qualname__
    checkpoint = {key: {"train_sampler": dict(sampler_state)}}
    progress = SimpleNamespace(current=SimpleNamespace(processed=processed))
    trainer = SimpleNamespace(
        datamodule=datamodule,
        num_training_batches=batches,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(batch_progress=progress)),
    )
    ResumeState().on_save_checkpoint(trainer, None, checkpoint)
    return checkpoint[key]["train_sampler"]


def test_resume_position_counts_batches_processed_not_indices_prefetched() -> None:
    # Two workers prefetching may have drawn the epoch to its end (the sampler then counts 0).
    state = saved_sampler_state({"epoch": 3, "yielded": 0, "world_size": 1}, processed=2)
    assert state == {"epoch": 3, "yielded": 8, "world_size": 1}


def test_a_checkpoint_at_the_end_of_an_epoch_resumes_at_the_next_one() -> None:
    state = saved_sampler_state({"epoch": 3, "yielded": 0, "world_size": 1}, processed=5)
    assert state == {"epoch": 4, "yielded": 0, "world_size": 1}


def test_resume_with_the_classes_permuted_is_refused_naming_data_classes(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path
) -> None:
    """The checkpoint learnt anticlockwise as class 0; resuming with another order would train
    on targets that no longer mean what the output units learnt."""
    run = tmp_path / "run"
    tiny = [f"data.manifest={demo_videos}", *TINY, f"paths.output_dir={run}"]
    train(compose_train(*tiny, "trainer.max_epochs=1"))
    permuted = "data.classes=[clockwise,anticlockwise,erratic]"
    with pytest.raises(ConfigError, match=r"data\.classes: checkpoint \['anticlockwise'"):
        train(compose_train(*tiny, permuted, f"resume={run}"))


def test_resume_differences_name_the_task_and_the_frame_size() -> None:
    saved = {
        "vidlearn_task": "vidlearn.tasks.binary.BinaryTask",
        "hyper_parameters": {"classes": ["a", "b"], "preprocessing": {"size": 64}},
    }
    now = {"classes": ["a", "b"], "preprocessing": {"size": 32}}
    differences = resume_differences(saved, "vidlearn.tasks.multiclass.MulticlassTask", now)
    assert [entry.split(":")[0] for entry in differences] == ["task", "data.size"]


@pytest.mark.parametrize(
    ("key", "then", "now"),
    [
        ("layer_decay", None, 0.75),
        ("backbone_lr_scale", 0.1, 0.5),
        ("conv_weight_decay", 1e-3, None),
    ],
)
def test_resume_differences_name_what_shapes_the_optimiser_groups(
    key: str, then: object, now: object
) -> None:
    """The saved optimiser state fixes the groups and their rates: another layer_decay changed
    the group count (torch's bare ValueError mid-fit), another scale was silently ignored.
    Failed before the fix: no difference was found."""
    saved = {"hyper_parameters": {key: then}}
    differences = resume_differences(saved, "t", {key: now})
    assert [entry.split(":")[0] for entry in differences] == [f"task.{key}"]


def test_a_checkpoint_from_before_the_grouping_options_resumes_at_their_defaults() -> None:
    now = {"layer_decay": None, "backbone_lr_scale": 1.0, "conv_weight_decay": None}
    assert resume_differences({"hyper_parameters": {}}, "t", now) == []


def test_layer_decay_1_and_null_are_both_off_so_no_difference() -> None:
    """Both give the same groups (tests/tasks/test_layer_decay.py)."""
    saved = {"hyper_parameters": {"layer_decay": 1.0}}
    assert resume_differences(saved, "t", {"layer_decay": None}) == []


def test_a_new_initial_weights_choice_is_no_difference() -> None:
    saved = {"hyper_parameters": {"model_config": {"backbone": {"weights": "imagenet", "x": 1}}}}
    now = {"model_config": {"backbone": {"weights": "none", "x": 1}}}
    assert resume_differences(saved, "t", now) == []


def test_resuming_in_place_keeps_the_earlier_epochs_in_metrics_csv(
    compose_train: Callable[..., DictConfig], demo_videos: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # a constant rate: a decaying schedule refuses a resume over more epochs (test_optim.py)
    tiny = [f"data.manifest={demo_videos}", *TINY, f"paths.output_dir={run}", "scheduler=none"]
    train(compose_train(*tiny, "trainer.max_epochs=1"))
    train(compose_train(*tiny, "trainer.max_epochs=2", f"resume={run}"))
    metrics = pd.read_csv(run / "metrics.csv")
    assert sorted(metrics.dropna(subset=["train/loss"])["epoch"].unique()) == [0, 1]
    assert metrics["step"].is_monotonic_increasing
