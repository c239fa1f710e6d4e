"""MobileNetV2 image classifier with a dense head: the Keras transfer-learning recipe in torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor, nn
from torchvision.models import MobileNet_V2_Weights, WeightsEnum, mobilenet_v2

from vidlearn.errors import ConfigError
from vidlearn.models.input_conv import adapt_input_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import (
    cached_pretrained,
    load_checked,
    parse_weights,
    preprocessing_for,
    read_state_dict,
)

PRETRAINED = MobileNet_V2_Weights.IMAGENET1K_V1  # the original weights, as in Keras
NUM_BLOCKS = 19  # len(torchvision mobilenet_v2().features)
# Keras froze layers[:100]; block granularity closest to that is features[:12] (see class doc).
KERAS_RECIPE_FROZEN_BLOCKS = 12
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


class MobileNetV2Classifier(nn.Module):
    """Image classifier `(B, C, H, W) -> (B, num_outputs)` logits: MobileNetV2 features, GAP, MLP.

    The head is `len(hidden_sizes)` blocks of Linear -> activation -> Dropout, then a Linear to
    `num_outputs` (softmax/sigmoid live in the task).

    `freeze` is the number of leading `features` blocks frozen (requires_grad False and their
    BatchNorm kept in eval mode, even under `train()`), or "all_but_head" for all 19, or 0.
    torchvision's `features` are: 0 = stem (Keras Conv1, bn_Conv1, Conv1_relu), 1 = Keras
    `expanded_conv` (block 0), k + 1 = Keras `block_k` for k = 1..16, 18 = Keras Conv_1 (1x1 to
    1280). Counting Keras MobileNetV2 layers (input 0, stem 1-3, expanded_conv 4-8, 9 layers per
    stride-2 or residual block, 8 for blocks 10 and 16), block_11 spans layers 98-106 and layer
    100 is `block_11_expand_relu`. The Keras recipe froze `layers[:100]`, i.e. everything up to
    block_10 plus block_11's expand conv and its BN. `freeze=12` (stem .. Keras block_10) is the
    closest block boundary: it leaves only block_11's 1x1 expand conv (96 -> 576) trainable that
    Keras froze.

    `in_channels` != 3 adapts the first conv as timm's `adapt_input_conv` does: for 1 channel the
    RGB kernels are summed, so a grey image gives the activations the pretrained net gives for
    that image repeated as RGB (frozen BatchNorm statistics then still fit; a plain average would
    scale them by 1/3); for other counts the RGB kernels are repeated and scaled by 3/in_channels.
    """

    def __init__(
        self,
        num_outputs: int,
        weights: str | None = "imagenet",
        freeze: int | str = KERAS_RECIPE_FROZEN_BLOCKS,
        hidden_sizes: Sequence[int] = (1024, 1024, 512),
        dropout: float = 0.0,
        activation: str = "relu",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation={activation!r} is not one of {', '.join(ACTIVATIONS)}."
            )
        self.num_frozen = _frozen_block_count(freeze)
        choice = parse_weights(weights, "imagenet")
        net = mobilenet_v2(weights=cached_pretrained(PRETRAINED) if choice == "imagenet" else None)
        self.features = net.features
        if in_channels != 3:
            self.features[0][0] = adapt_input_conv(self.features[0][0], in_channels)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

        layers: list[nn.Module] = []
        width = net.last_channel  # 1280
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_outputs))
        self.head = nn.Sequential(*layers)

        if isinstance(choice, Path):
            load_checked(self, read_state_dict(choice), str(choice))
        self.preprocessing = preprocessing_for(choice, PRETRAINED)
        self.features[: self.num_frozen].requires_grad_(False)
        # Every stride-2 conv pads and the pooling is adaptive: any image size trains, down to 1
        # pixel (tests/models/test_limits.py).
        self.input_limits = InputLimits("model=mobilenet_v2")

    @staticmethod
    def pretrained_weights(weights: str | None) -> WeightsEnum | None:
        """The torchvision weights that `weights` loads, or None for none or a file."""
        return PRETRAINED if parse_weights(weights, "imagenet") == "imagenet" else None

    def train(self, mode: bool = True) -> MobileNetV2Classifier:
        """Set train/eval mode; frozen blocks stay in eval so their BatchNorm stats stay put."""
        super().train(mode)
        self.features[: self.num_frozen].eval()
        return self

    def forward(self, images: Tensor) -> Tensor:  # (B, C, H, W)
        features = self.pool(self.features(images))  # (B, 1280)
        return self.head(features)  # (B, num_outputs)


def _frozen_block_count(freeze: int | str) -> int:
    if freeze == "all_but_head":
        return NUM_BLOCKS
    if isinstance(freeze, bool) or not isinstance(freeze, int) or not 0 <= freeze <= NUM_BLOCKS:
        raise ConfigError(
            f"model.freeze={freeze!r} must be an int in [0, {NUM_BLOCKS}] (leading feature "
            f"blocks to freeze; {KERAS_RECIPE_FROZEN_BLOCKS} matches the Keras recipe) or "
            "'all_but_head'."
        )
    return freeze
