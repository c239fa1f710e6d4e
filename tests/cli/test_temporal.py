"""The demo task needs temporal order: the frame CNN + GRU learns it, shuffled frames cannot.

Every run uses the full default demo videos and the default model for the default epochs
(conf/trainer/cpu.yaml, with early stopping), so the first test trains what a newcomer's
`vidlearn-train` does; they are slow (about three minutes each on 2 quiet CPU cores).
"""

from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.train import train
from vidlearn.demo import make_videos

# Each run takes 2-4 minutes on 2 shared cores; the default 300 s per-test limit is too short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
# The default run's epochs (compose_train shrinks runs to one epoch); read, so the tests follow it.
DEFAULT_EPOCHS = (
    f"trainer.max_epochs={OmegaConf.load(CONF_DIR / 'trainer' / 'cpu.yaml').max_epochs}"
)


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_videos(tmp_path_factory.mktemp("full_demo"), seed=0)


def test_frame_gru_learns_the_order_of_frames(
    compose_train: Callable[..., DictConfig], full_demo: Path
) -> None:
    summary = train(
        compose_train(f"data.manifest={full_demo}", DEFAULT_EPOCHS, "data.num_workers=2")
    )
    assert summary["metrics"]["test/balanced_accuracy"] >= 0.85


def test_shuffled_frames_fall_to_chance(
    compose_train: Callable[..., DictConfig], full_demo: Path
) -> None:
    summary = train(
        compose_train(
            f"data.manifest={full_demo}",
            "experiment=shuffled_frames",
            DEFAULT_EPOCHS,
            "data.num_workers=2",
        )
    )
    # Three classes: chance is 1/3; the ordered model above reaches >= 0.85.
    assert summary["metrics"]["test/balanced_accuracy"] <= 0.5


def test_mean_pooling_over_shuffled_frames_falls_to_chance(
    compose_train: Callable[..., DictConfig], full_demo: Path
) -> None:
    summary = train(
        compose_train(
            f"data.manifest={full_demo}",
            "experiment=shuffled_frames",
            "model.temporal=mean",
            DEFAULT_EPOCHS,
            "data.num_workers=2",
        )
    )
    assert summary["metrics"]["test/balanced_accuracy"] <= 0.5
