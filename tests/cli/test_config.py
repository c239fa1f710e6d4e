"""Every config choice composes and names importable classes; bad keys and types fail at start."""

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.schema import validate

GROUPS = [
    "data",
    "augment",
    "erasing",
    "mix",
    "sampler",
    "model",
    "task",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "clip_sampler",
    "views",
]
CHOICES = [
    f"{group}={path.stem}" for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))
]
EXPERIMENTS = [
    f"experiment={path.stem}" for path in sorted((CONF_DIR / "experiment").glob("*.yaml"))
]
VIDLEARN_TRAIN = Path(sys.executable).parent / "vidlearn-train"


def targets(node: object) -> Iterator[str]:
    """Every `_target_` string in a config tree (a container from OmegaConf.to_container)."""
    if isinstance(node, dict):
        yield from [node["_target_"]] if "_target_" in node else []
        for value in node.values():
            yield from targets(value)
    elif isinstance(node, list):
        for item in node:
            yield from targets(item)


@pytest.mark.parametrize("override", CHOICES + EXPERIMENTS)
def test_every_choice_composes_validates_and_imports(
    compose_train: Callable[..., DictConfig], override: str
) -> None:
    group = override.split("=")[0]
    # clip_sampler files are picked for data.train_clip_sampler / data.eval_clip_sampler.
    if group == "clip_sampler":
        override = f"clip_sampler@data.train_clip_sampler={override.split('=')[1]}"
    cfg = compose_train(override)
    validate(cfg)
    found = list(targets(OmegaConf.to_container(cfg, resolve=False)))
    assert found, f"{override} composes to a config with no _target_"
    for target in found:
        get_object(target)  # raises ImportError / AttributeError naming the bad path


def test_schema_rejects_a_wrong_type_naming_the_key(
    compose_train: Callable[..., DictConfig],
) -> None:
    with pytest.raises(ValueError, match=r"data\.batch_size='abc' has the wrong type"):
        validate(compose_train("data.batch_size=abc"))
    with pytest.raises(ValueError, match=r"trainer\.max_epochs=1\.5"):
        validate(compose_train("trainer.max_epochs=1.5"))
    validate(compose_train("data.batch_size=3", "data.folds=5", "data.fold=1"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("task.layer_decay=abc", r"task\.layer_decay='abc' has the wrong type"),
        ("task.layer_decay=1.5", r"task\.layer_decay=1\.5 is out of range: it must be in \(0, 1\]"),
        ("task.layer_decay=0", r"task\.layer_decay=0 is out of range"),
    ],
)
def test_schema_checks_the_layer_decay_range(
    compose_train: Callable[..., DictConfig], override: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate(compose_train(override))
    validate(compose_train("task.layer_decay=0.75"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["mix=mixup", "mix.prob=abc"], r"mix\.prob='abc' has the wrong type"),
        (["mix=mixup", "mix.switch_prob=1.5"], r"mix\.switch_prob=1\.5 is out of range"),
        (["mix=cutmix", "mix.cutmix_alpha=-1"], r"mix\.cutmix_alpha=-1 is out of range"),
        (["mix=mixup", "mix.mixup_alpha=inf"], r"mix\.mixup_alpha=inf is out of range"),
        (["erasing=random", "erasing.p=abc"], r"erasing\.p='abc' has the wrong type"),
        (["erasing=random", "erasing.attempts=2.5"], r"erasing\.attempts=2\.5 has the wrong"),
        (["erasing=random", "erasing.area=[0.1]"], r"erasing\.area=\[0\.1\] is out of range"),
        (["erasing=random", "erasing.aspect=[0.3,inf]"], r"erasing\.aspect=.* is out of range"),
        (["task=binary", "task.label_smoothing=abc"], r"task\.label_smoothing='abc' has the"),
        (["task.label_smoothing=1"], r"task\.label_smoothing=1 is out of range"),
        (["task.backbone_lr_scale=abc"], r"task\.backbone_lr_scale='abc' has the wrong type"),
    ],
)
def test_schema_checks_the_regularisers_naming_the_key(
    compose_train: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    """Failed before the fix: these reached the constructors, whose comparisons raised a
    TypeError (reported as a vidlearn bug) or let inf and a one-number range through."""
    with pytest.raises(ValueError, match=message):
        validate(compose_train(*overrides))


@pytest.mark.parametrize(
    "overrides",
    [["mix=mixup_cutmix", "erasing=random"], ["mix=none", "erasing=none"], ["task=regression"]],
)
def test_schema_accepts_the_shipped_regularisers(
    compose_train: Callable[..., DictConfig], overrides: list[str]
) -> None:
    validate(compose_train(*overrides))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.bacth_size=3", "data.bacth_size"),
        ("data.batch_size=abc", "data.batch_size='abc' has the wrong type"),
    ],
)
def test_cli_stops_before_training_naming_the_bad_key(
    tmp_path: Path, override: str, message: str
) -> None:
    result = subprocess.run(
        [
            str(VIDLEARN_TRAIN),
            override,
            f"hydra.run.dir={tmp_path}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "checkpoints").exists()
