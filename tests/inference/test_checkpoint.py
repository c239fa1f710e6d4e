"""load_checkpoint rebuilds the trained network from plain data and refuses anything else."""

import socket
from pathlib import Path

import pytest
import torch

from vidlearn.inference.checkpoint import CheckpointError, load_checkpoint
from vidlearn.models.mobilenet_v2 import MobileNetV2Classifier


def no_network(*args: object, **kwargs: object) -> socket.socket:
    raise OSError("network is unreachable (test without network)")


class Payload:
    """Unpickling this would create `marker`: a stand-in for code smuggled into a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_rebuilds_the_network_with_the_trained_weights(video_checkpoint: Path) -> None:
    loaded = load_checkpoint(video_checkpoint)
    stored = torch.load(video_checkpoint, weights_only=True)["state_dict"]
    assert loaded.classes == ["anticlockwise", "clockwise", "erratic"]
    assert loaded.label_kind == "multiclass" and loaded.input_shape(2) == (2, 6, 3, 32, 32)
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, stored[f"model.{name}"])
    assert not loaded.model.training
    scores = loaded.scores(loaded.model(torch.zeros(loaded.input_shape(2))))
    assert torch.allclose(scores.sum(dim=1), torch.ones(2))


def test_a_network_trained_from_pretrained_weights_loads_offline_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "_target_": "vidlearn.models.mobilenet_v2.MobileNetV2Classifier",
        "weights": "imagenet",
        "hidden_sizes": [4],
    }
    trained = MobileNetV2Classifier(num_outputs=2, weights="none", hidden_sizes=[4])
    hparams = {"classes": ["a", "b"], "model_config": config, "preprocessing": {"size": 32}}
    state = {f"model.{name}": value for name, value in trained.state_dict().items()}
    torch.save({"hyper_parameters": hparams, "state_dict": state}, tmp_path / "posture.ckpt")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no pretrained file here
    monkeypatch.setattr(socket, "create_connection", no_network)
    loaded = load_checkpoint(tmp_path / "posture.ckpt")
    assert torch.equal(loaded.model.head[0].weight, trained.head[0].weight)


def test_refuses_a_pickle_payload_without_running_it(
    tmp_path: Path, video_checkpoint: Path
) -> None:
    marker = tmp_path / "payload_ran"
    tampered = tmp_path / "tampered.ckpt"
    contents = torch.load(video_checkpoint, weights_only=True)
    contents["hyper_parameters"]["extra"] = Payload(marker)
    torch.save(contents, tampered)
    with pytest.raises(CheckpointError, match="refused to load") as error:
        load_checkpoint(tampered)
    assert str(tampered) in str(error.value)
    assert not marker.exists()


def test_a_checkpoint_without_vidlearn_hyperparameters_is_named_in_the_error(
    tmp_path: Path,
) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not a vidlearn checkpoint") as error:
        load_checkpoint(foreign)
    assert str(foreign) in str(error.value) and "model_config" in str(error.value)


def test_a_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.ckpt")
