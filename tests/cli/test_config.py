"""Every config choice composes and names importable classes; bad keys and types fail at start."""

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ScriptRun, compose_small_train
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


@pytest.fixture(scope="module")
def regularised(tmp_path_factory: pytest.TempPathFactory) -> DictConfig:
    """A binary run with mix=mixup_cutmix and erasing=random, composed once for the module."""
    return compose_small_train(
        tmp_path_factory.mktemp("regularised"), "task=binary", "mix=mixup_cutmix", "erasing=random"
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mix.prob", "abc", r"mix\.prob='abc' has the wrong type"),
        ("mix.switch_prob", 1.5, r"mix\.switch_prob=1\.5 is out of range"),
        ("mix.cutmix_alpha", -1, r"mix\.cutmix_alpha=-1 is out of range"),
        ("mix.mixup_alpha", math.inf, r"mix\.mixup_alpha=inf is out of range"),
        ("erasing.p", "abc", r"erasing\.p='abc' has the wrong type"),
        ("erasing.attempts", 2.5, r"erasing\.attempts=2\.5 has the wrong type"),
        ("erasing.area", [0.1], r"erasing\.area=\[0\.1\] is out of range"),
        ("erasing.aspect", [0.3, math.inf], r"erasing\.aspect=\[0\.3, inf\] is out of range"),
        ("task.label_smoothing", "abc", r"task\.label_smoothing='abc' has the wrong type"),
        ("task.label_smoothing", 1, r"task\.label_smoothing=1 is out of range"),
        ("task.backbone_lr_scale", "abc", r"task\.backbone_lr_scale='abc' has the wrong type"),
    ],
)
def test_schema_checks_the_regularisers_naming_the_key(
    regularised: DictConfig, key: str, value: object, message: str
) -> None:
    """Failed before the fix: these reached the constructors, whose comparisons raised a
    TypeError (reported as a vidlearn bug) or let inf and a one-number range through."""
    validate(regularised)  # the shipped values pass
    cfg = regularised.copy()
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ValueError, match=message):
        validate(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.bacth_size=3", "data.bacth_size"),
        ("data.batch_size=abc", "data.batch_size='abc' has the wrong type"),
    ],
)
def test_cli_stops_before_training_naming_the_bad_key(
    console_script: Callable[..., ScriptRun], tmp_path: Path, override: str, message: str
) -> None:
    result = console_script(
        "vidlearn-train",
        override,
        f"hydra.run.dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "checkpoints").exists()
