"""Checkpoints carry classes, preprocessing and model config as plain data and restore the task."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.optim import OneCycle, Plateau, WarmupCosine

ADAM = partial(torch.optim.Adam, lr=0.02)
# Hydra hands these over as OmegaConf containers, which torch.load(weights_only=True) rejects
CLASSES = OmegaConf.create(["walk", "run", "sit"])
PREPROCESSING = OmegaConf.create(
    {"size": [32, 32], "mean": [0.5], "std": [0.25], "modality": "video"}
)
MODEL_CONFIG = OmegaConf.create({"_target_": "tests.TinyNet", "num_outputs": 3})


def _train_and_checkpoint(task, make_batch, fit, tmp_path) -> str:
    batch = make_batch(torch.tensor([0, 1, 2, 0]))
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    fit(
        task,
        batch,
        repeats=3,
        val_batch=batch,
        max_epochs=2,
        callbacks=[checkpoint],
        enable_checkpointing=True,
    )
    return checkpoint.last_model_path


@pytest.mark.parametrize(
    "scheduler",
    [None, WarmupCosine(warmup_epochs=1), OneCycle(), Plateau()],
    ids=["none", "cosine", "onecycle", "plateau"],
)
def test_checkpoint_loads_with_weights_only(scheduler, tiny_net, make_batch, fit, tmp_path) -> None:
    task = MulticlassTask(
        tiny_net(3),
        CLASSES,
        optimizer=ADAM,
        scheduler=scheduler,
        preprocessing=PREPROCESSING,
        model_config=MODEL_CONFIG,
    )
    checkpoint = torch.load(
        _train_and_checkpoint(task, make_batch, fit, tmp_path), weights_only=True
    )
    hparams = checkpoint["hyper_parameters"]
    assert hparams["classes"] == ["walk", "run", "sit"]
    assert hparams["preprocessing"] == {
        "size": [32, 32],
        "mean": [0.5],
        "std": [0.25],
        "modality": "video",
    }
    assert hparams["model_config"] == {"_target_": "tests.TinyNet", "num_outputs": 3}


def test_checkpoint_restores_identical_predictions_into_a_fresh_model(
    tiny_net, make_batch, fit, tmp_path
) -> None:
    task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM, preprocessing=PREPROCESSING)
    path = _train_and_checkpoint(task, make_batch, fit, tmp_path)
    restored = MulticlassTask.load_from_checkpoint(path, model=tiny_net(3), weights_only=True)
    batch = make_batch(torch.tensor([0, 1, 2]), seed=1)
    task.eval()
    restored.eval()
    with torch.no_grad():
        expected = task.predict_step(batch, 0)["probabilities"]
        assert torch.equal(restored.predict_step(batch, 0)["probabilities"], expected)
    assert restored.classes == ["walk", "run", "sit"]
