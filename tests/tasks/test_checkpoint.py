"""Checkpoints carry classes, preprocessing and model config as plain data and restore the task."""

from __future__ import annotations

import operator
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from vidlearn.tasks.binary import BinaryTask
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.optim import OneCycle, Plateau, WarmupCosine
from vidlearn.tasks.regression import RegressionTask

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


# hyper_parameters exactly as the tasks wrote them before their shared arguments were forwarded
# as **options (non-default values, so a dropped or renamed key shows)
SHARED_HPARAMS = {
    "backbone_lr_scale": 1.0,
    "conv_weight_decay": 0.001,
    "on_nonfinite_loss": "skip",
    "preprocessing": {"size": [32, 32], "mean": [0.5], "std": [0.25], "modality": "video"},
    "model_config": {"_target_": "tests.TinyNet", "num_outputs": 3},
}
EARLIER_HPARAMS = {
    MulticlassTask: {
        "classes": ["walk", "run", "sit"],
        **SHARED_HPARAMS,
        "label_smoothing": 0.1,
        "class_weights": [1.0, 2.0, 3.0],
    },
    BinaryTask: {"classes": ["no", "yes"], **SHARED_HPARAMS, "pos_weight": 2.0, "threshold": 0.3},
    RegressionTask: {
        "classes": [],
        **SHARED_HPARAMS,
        "loss": "huber",
        "standardize_targets": True,
        "target_stats": [50.0, 10.0],
    },
}
# arguments added since, which such a checkpoint gets with their defaults: per task and shared
ADDED_SINCE = {BinaryTask: {"label_smoothing": 0.0}}
ADDED_DEFAULTS = {"layer_decay": None}
# (attribute, value) that shows the task's own argument took effect
OWN_EFFECT = {
    MulticlassTask: ("criterion.label_smoothing", 0.1),
    BinaryTask: ("criterion.pos_weight", torch.tensor([2.0])),
    RegressionTask: ("target_std", 10.0),
}


@pytest.mark.parametrize("task_class", list(EARLIER_HPARAMS), ids=lambda cls: cls.label_kind)
def test_a_task_stores_its_own_and_the_shared_arguments_as_flat_hparams(
    task_class, tiny_net
) -> None:
    expected = EARLIER_HPARAMS[task_class]
    task = task_class(tiny_net(3), optimizer=ADAM, **expected)
    # the optimizer is not stored
    assert dict(task.hparams) == {**expected, **ADDED_DEFAULTS, **ADDED_SINCE.get(task_class, {})}
    assert task.optimizer_factory is ADAM  # but reached Task


@pytest.mark.parametrize("task_class", list(EARLIER_HPARAMS), ids=lambda cls: cls.label_kind)
def test_a_checkpoint_with_earlier_hparams_loads_with_every_argument_applied(
    task_class, tiny_net, tmp_path
) -> None:
    net = tiny_net(3)
    path = tmp_path / "earlier.ckpt"
    state = {f"model.{key}": value for key, value in net.state_dict().items()}
    if task_class is MulticlassTask:
        state["criterion.weight"] = torch.tensor([1.0, 2.0, 3.0])
    if task_class is BinaryTask:
        state["criterion.pos_weight"] = torch.tensor([2.0])
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": EARLIER_HPARAMS[task_class],
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    restored = task_class.load_from_checkpoint(
        path, model=tiny_net(3), optimizer=ADAM, weights_only=True
    )
    expected = {**EARLIER_HPARAMS[task_class], **ADDED_DEFAULTS, **ADDED_SINCE.get(task_class, {})}
    assert dict(restored.hparams) == expected
    assert restored.optimizer_factory is ADAM
    attribute, value = OWN_EFFECT[task_class]
    assert operator.attrgetter(attribute)(restored) == value
    assert torch.equal(restored.model.state_dict()["head.weight"], net.state_dict()["head.weight"])
