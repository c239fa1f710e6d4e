"""Config faults stop a run before it writes anything, naming the key and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from vidlearn.cli.train import train
from vidlearn.data.manifest import ManifestError
from vidlearn.errors import ConfigError


def test_unknown_key_is_refused_naming_it(compose_train: Callable[..., DictConfig]) -> None:
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'data\.bacth_size'"):
        compose_train("data.bacth_size=3")


def test_wrong_type_stops_train_before_any_output(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", "data.batch_size=abc")
    with pytest.raises(ValueError, match=r"data\.batch_size='abc' has the wrong type"):
        train(cfg)
    assert not Path(cfg.paths.output_dir).exists()


def test_missing_required_value_names_the_key(compose_train: Callable[..., DictConfig]) -> None:
    cfg = compose_train("data.manifest=???")
    with pytest.raises(MissingMandatoryValue, match=r"data\.manifest"):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_class_list_that_disagrees_with_the_data_names_the_rows(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", "data.classes=[clockwise,anticlockwise]")
    with pytest.raises(ManifestError, match="'erratic'") as error:
        train(cfg)
    assert str(demo_videos) in str(error.value)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_probe_timeout_must_be_positive(
    compose_train: Callable[..., DictConfig], demo_videos: Path, value: str
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", f"data.probe_timeout={value}")
    with pytest.raises(ConfigError, match=r"data\.probe_timeout=-?\d+ is out of range"):
        train(cfg)


def test_probe_timeout_null_means_no_deadline(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    cfg = compose_train(f"data.manifest={demo_videos}", "data.probe_timeout=null")
    assert instantiate(cfg.data, label_kind="multiclass").probe_timeout is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer.lr=abc", r"optimizer\.lr='abc' has the wrong type"),
        ("optimizer.lr=-0.1", r"optimizer\.lr=-0\.1 is out of range"),
        ("optimizer=adamw optimizer.weight_decay=-1", r"optimizer\.weight_decay=-1"),
        ("data.frames=1000000000000", r"data\.frames=1000000000000 is out of range"),
        ("data.size=1000000000000", r"data\.size=1000000000000 is out of range"),
        ("monitor=1", r"monitor=1 is not a metric this run logs"),
    ],
)
def test_optimizer_values_clip_size_and_monitor_are_checked_at_start(
    compose_train: Callable[..., DictConfig], demo_videos: Path, override: str, expected: str
) -> None:
    """Found by experiments/fuzz_cli.py: a text learning rate failed inside torch's optimiser at
    the first step, a trillion-frame clip tried to allocate 7 TiB in the probe, a trillion-pixel
    side failed inside OpenCV, and monitor=1 (an int) failed reading its name."""
    cfg = compose_train(f"data.manifest={demo_videos}", *override.split())
    with pytest.raises(ConfigError, match=expected):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()
