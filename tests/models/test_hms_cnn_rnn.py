from __future__ import annotations

import pytest
import torch
from torch import nn

from vidlearn.errors import ConfigError
from vidlearn.models.hms_cnn_rnn import HmsCnnRnn


def test_recipe_input_maps_to_logits() -> None:
    model = HmsCnnRnn(num_outputs=2).eval()
    clips = torch.randn(2, 25, 1, 150, 150)  # the recipe's (B, T, C, H, W); ~1 s on one core
    with torch.no_grad():
        assert model(clips).shape == (2, 2)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_small_input_maps_to_logits(rnn: str, batch_size: int) -> None:
    model = HmsCnnRnn(num_outputs=3, in_channels=2, num_frames=4, size=64, rnn=rnn).eval()
    with torch.no_grad():
        assert model(torch.randn(batch_size, 4, 2, 64, 64)).shape == (batch_size, 3)


def test_recipe_layer_widths() -> None:
    model = HmsCnnRnn(num_outputs=1)
    convs = [m for m in model.frame_cnn if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs[:2]] == [
        (32, (5, 5), (2, 2)),
        (32, (3, 3), (1, 1)),
    ]
    assert [c.out_channels for c in convs[2:]] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert sum(isinstance(m, nn.Dropout2d) for m in model.frame_cnn) == 3
    assert model.rnn.input_size == 512 * 2 * 2  # 150 -> 75 -> 37 -> 18 -> 9 -> 4 -> 2
    assert (model.rnn.hidden_size, model.dense[0].in_features) == (128, 25 * 128)


def test_conv_parameters_are_exactly_the_conv_kernels() -> None:
    model = HmsCnnRnn(num_outputs=1, num_frames=2, size=64)
    kernels = {id(m.weight) for m in model.modules() if isinstance(m, nn.Conv2d)}
    parameters = model.conv_parameters()
    assert len(parameters) == 10
    assert {id(p) for p in parameters} == kernels


def test_clips_of_another_length_are_rejected_with_the_config_key() -> None:
    model = HmsCnnRnn(num_outputs=1, num_frames=3, size=64)
    with pytest.raises(ConfigError, match="model.num_frames=3 frames but got clips of 5"):
        model(torch.randn(1, 5, 1, 64, 64))


def test_frames_too_small_for_the_poolings_are_rejected() -> None:
    with pytest.raises(ValueError, match="model.size=62"):
        HmsCnnRnn(num_outputs=1, size=62)


def test_unknown_rnn_is_rejected() -> None:
    with pytest.raises(ConfigError, match="model.rnn='rnn'"):
        HmsCnnRnn(num_outputs=1, rnn="rnn")
