from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlearn.errors import ConfigError
from vidlearn.models.backbones import SmallCNN
from vidlearn.models.frame_gru import FrameGRU


def tiny_model(**options) -> FrameGRU:
    torch.manual_seed(0)
    return FrameGRU(num_outputs=3, backbone=SmallCNN(widths=(4, 8), pooled_size=2), **options)


def clips(batch_size: int = 2, num_frames: int = 5) -> torch.Tensor:
    return torch.randn(
        batch_size, num_frames, 3, 16, 16, generator=torch.Generator().manual_seed(1)
    )


@pytest.mark.parametrize("batch_size", [1, 3])
def test_frame_gru_maps_clips_to_logits(batch_size: int) -> None:
    assert tiny_model()(clips(batch_size)).shape == (batch_size, 3)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("readout", ["last", "mean", "attention"])
def test_rnn_variants_map_clips_to_logits(rnn: str, bidirectional: bool, readout: str) -> None:
    model = tiny_model(rnn=rnn, bidirectional=bidirectional, readout=readout, num_layers=2)
    assert model(clips(3)).shape == (3, 3)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_bidirectional_last_readout_joins_forward_end_and_backward_start(rnn: str) -> None:
    model = tiny_model(rnn=rnn, bidirectional=True, readout="last", num_layers=2).eval()
    model.head = nn.Identity()  # expose the readout itself
    inputs = clips()
    with torch.no_grad():
        pooled = model(inputs)  # (B, 2 * hidden_size)
        frames = model.backbone(inputs.flatten(0, 1)).view(2, 5, -1)
        outputs, _ = model.rnn(frames)  # (B, T, 2 * hidden_size)
    hidden_size = model.rnn.hidden_size
    assert torch.allclose(pooled[:, :hidden_size], outputs[:, -1, :hidden_size])
    assert torch.allclose(pooled[:, hidden_size:], outputs[:, 0, hidden_size:])


def test_frame_chunks_give_the_unchunked_output_in_eval_mode() -> None:
    whole = tiny_model().eval()
    chunked = tiny_model(frame_chunk_size=3).eval()
    inputs = clips(batch_size=2, num_frames=5)  # 10 frames: chunks of 3, 3, 3, 1
    with torch.no_grad():
        assert torch.allclose(chunked(inputs), whole(inputs), atol=1e-6)


def test_mean_temporal_model_ignores_frame_order() -> None:
    model = tiny_model(temporal="mean").eval()
    inputs = clips()
    with torch.no_grad():
        assert torch.allclose(model(inputs.flip(1)), model(inputs), atol=1e-6)


def test_rnn_model_depends_on_frame_order() -> None:
    model = tiny_model().eval()
    inputs = clips()
    with torch.no_grad():
        assert not torch.allclose(model(inputs.flip(1)), model(inputs), atol=1e-4)


def test_frozen_backbone_keeps_its_weights_while_the_rest_trains() -> None:
    model = tiny_model(freeze_backbone=True).train()
    before = {name: value.clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(clips()).sum().backward()
    optimizer.step()
    for name, value in model.named_parameters():
        changed = not torch.equal(value, before[name])
        assert changed != name.startswith("backbone."), name


def test_frozen_backbone_keeps_batchnorm_statistics_in_train_mode() -> None:
    model = tiny_model(freeze_backbone=True).train()
    batch_norm = model.backbone.layers[1]
    before = batch_norm.running_mean.clone()
    model(clips())
    assert not batch_norm.training
    assert torch.equal(batch_norm.running_mean, before)


def test_unfrozen_backbone_updates_batchnorm_statistics() -> None:
    model = tiny_model().train()
    batch_norm = model.backbone.layers[1]
    before = batch_norm.running_mean.clone()
    model(clips())
    assert not torch.equal(batch_norm.running_mean, before)


@pytest.mark.parametrize(
    ("option", "value"), [("temporal", "transformer"), ("rnn", "rnn"), ("readout", "max")]
)
def test_unknown_choices_are_rejected_with_the_config_key(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"model.{option}={value!r}"):
        tiny_model(**{option: value})


def test_backbones_without_feature_dim_are_rejected() -> None:
    with pytest.raises(ConfigError, match="feature_dim"):
        FrameGRU(num_outputs=2, backbone=nn.Conv2d(3, 4, 3))
