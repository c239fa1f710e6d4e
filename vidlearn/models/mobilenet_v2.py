"""MobileNetV2 image classifier with a dense head: the Keras transfer-learning recipe in torch."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models import WeightsEnum

from vidlearn.errors import ConfigError
from vidlearn.models.input_conv import adapt_input_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import (
    Preprocessing,
    build_torchvision,
    file_preprocessing,
    pretrained_choice,
)

# model.weights=imagenet: the original weights, as in Keras (IMAGENET1K_V2 by its name)
ALIASES = {"imagenet": "IMAGENET1K_V1"}
CONFIG_KEY = "model.weights"
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

    `weights` (`vidlearn.models.weights.choose_weights`): "imagenet" (torchvision's
    IMAGENET1K_V1), IMAGENET1K_V2, "none", or a path: torchvision's own file
    (mobilenet_v2-b0353104.pth, as its weights URL gives it) or a state_dict of this model.

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
        # torchvision's own file of the network is loaded now, before the head changes
        built = build_torchvision("mobilenet_v2", weights, ALIASES, CONFIG_KEY)
        net, file = built.net, built.file
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

        if file is not None:
            file.load_model(self)
        self.preprocessing = built.preprocessing
        self.features[: self.num_frozen].requires_grad_(False)
        # Every stride-2 conv pads and the pooling is adaptive: any image size trains, down to 1
        # pixel (tests/models/test_limits.py).
        self.input_limits = InputLimits("model=mobilenet_v2")

    @staticmethod
    def pretrained_weights(weights: str | None) -> WeightsEnum | None:
        """The torchvision weights that `weights` loads, or None for none or a file."""
        return pretrained_choice("mobilenet_v2", weights, ALIASES, CONFIG_KEY)

    @staticmethod
    def pretrained_preprocessing(weights: str | None) -> Preprocessing | None:
        """The mean/std of torchvision's weights that a file path names (a file downloaded by
        hand keeps torchvision's name); None otherwise (`pretrained_weights` says the rest)."""
        return file_preprocessing("mobilenet_v2", weights, ALIASES, CONFIG_KEY)

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
