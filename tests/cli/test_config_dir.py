"""Where configs come from: the package's own conf/ (installed or checkout) and a user's folder."""

import sys
from pathlib import Path

import pytest
from conftest import restored_process_state
from omegaconf import DictConfig, OmegaConf

from vidlearn.cli import train
from vidlearn.cli.config import find_conf_dir

# The README's examples of a user's config folder (section "Your own config folder").
USER_PRESET = """\
# @package _global_
# ~/my_conf/experiment/my_preset.yaml: picks groups and sets values
defaults:
  - override /model: r3d_18
  - override /optimizer: sgd
data:
  frames: 16
  size: 112
trainer:
  max_epochs: 30
"""
USER_DATA = """\
# ~/my_conf/data/my_clips.yaml: a data choice built on vidlearn's video_folder
defaults:
  - video_folder
  - _self_
folder: /data/clips
batch_size: 4
"""


def test_find_conf_dir_prefers_the_copy_installed_in_the_package(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "vidlearn"
    (package / "conf").mkdir(parents=True)
    (tmp_path / "site-packages" / "conf").mkdir()
    assert find_conf_dir(package) == package / "conf"


def test_find_conf_dir_falls_back_to_the_checkouts_top_level_conf(tmp_path: Path) -> None:
    (tmp_path / "vidlearn").mkdir()
    assert find_conf_dir(tmp_path / "vidlearn") == tmp_path / "conf"


@pytest.fixture
def user_conf(tmp_path: Path) -> Path:
    """A user's config folder with an experiment preset and a data choice of their own."""
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "data").mkdir()
    (tmp_path / "my_conf" / "experiment" / "my_preset.yaml").write_text(USER_PRESET)
    (tmp_path / "my_conf" / "data" / "my_clips.yaml").write_text(USER_DATA)
    return tmp_path / "my_conf"


def train_job_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *arguments: str
) -> DictConfig:
    """The job config `vidlearn-train ARGUMENTS --cfg job` prints (composed, not run)."""
    monkeypatch.setattr(sys, "argv", ["vidlearn-train", *arguments, "--cfg", "job"])
    with restored_process_state():  # --cfg leaves HydraConfig set (tests/conftest.py)
        train.main()
    return OmegaConf.create(capsys.readouterr().out)


def test_user_config_dir_preset_overrides_groups_and_values(
    user_conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = train_job_config(
        monkeypatch, capsys, "--config-dir", str(user_conf), "experiment=my_preset"
    )
    assert cfg.model.arch == "r3d_18"
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert (cfg.data.frames, cfg.data.size, cfg.trainer.max_epochs) == (16, 112, 30)


def test_user_config_dir_adds_a_group_choice_built_on_a_packaged_one(
    user_conf: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = train_job_config(monkeypatch, capsys, "--config-dir", str(user_conf), "data=my_clips")
    assert (cfg.data.folder, cfg.data.batch_size) == ("/data/clips", 4)
    assert cfg.data.manifest is None  # from the packaged video_folder choice it extends
