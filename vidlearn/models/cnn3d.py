"""torchvision's 3D CNN video classifiers (R3D, MC3, R(2+1)D, S3D) with a new output layer."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import WeightsEnum

from vidlearn.errors import ConfigError
from vidlearn.models.input_conv import adapt_first_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import (
    Preprocessing,
    WeightsFile,
    build_torchvision,
    file_preprocessing,
    pretrained_choice,
)

# model.weights=kinetics400 names torchvision's first Kinetics-400 weights of every video arch.
ALIASES = {"kinetics400": "KINETICS400_V1"}
CONFIG_KEY = "model.weights"

ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d")
# Smallest clip each arch trains on, found by a forward and backward pass over 2 x T x S x S
# inputs (experiments/README.md, "3D CNN input limits"): the ResNet-style archs pad every
# downsampling step and take any clip; s3d's unpadded max-pools refuse T < 5 or S < 17 in the
# forward pass, and at T = 5 the forward runs but max_pool3d's backward crashes the process
# (segfault, torch 2.14 CPU), hence 6.
LIMITS = {
    "r3d_18": InputLimits("model=r3d_18"),
    "mc3_18": InputLimits("model=mc3_18"),
    "r2plus1d_18": InputLimits("model=r2plus1d_18"),
    "s3d": InputLimits(
        "model=s3d", min_frames=6, min_size=17, hint="or pick model=r3d_18, which takes any clip"
    ),
}


class KineticsVideoModel(nn.Module):
    """Base of the torchvision video classifiers: `net` takes `(B, C, T, H, W)` clips.

    `weights` (`vidlearn.models.weights.choose_weights`): "kinetics400" (torchvision's
    KINETICS400_V1 of the arch), the name of any of torchvision's weights for the arch (e.g.
    KINETICS400_IMAGENET22K_V1 for swin3d_b), "none", or a path: torchvision's own file of the
    arch (as its weights URL gives it, e.g. r2plus1d_18-91a641e6.pth) or a state_dict of this
    whole model.
    """

    net: nn.Module

    @staticmethod
    def pretrained_weights(arch: str, weights: str | None) -> WeightsEnum | None:
        """The torchvision weights that `arch` and `weights` load, or None for none or a file."""
        return pretrained_choice(arch, weights, ALIASES, CONFIG_KEY)

    @staticmethod
    def pretrained_preprocessing(arch: str, weights: str | None) -> Preprocessing | None:
        """The mean/std of torchvision's weights that a file path names (a file downloaded by
        hand keeps torchvision's name); None otherwise (`pretrained_weights` says the rest)."""
        return file_preprocessing(arch, weights, ALIASES, CONFIG_KEY)

    def build_net(self, arch: str, weights: str | None) -> WeightsFile | None:
        """Set `net` to torchvision's `arch` with the weights `weights` chooses, and
        `preprocessing` to theirs; returns the file to load into the finished model (its
        `load_model`), or None. A torchvision file is loaded here, before head and stem change."""
        built = build_torchvision(arch, weights, ALIASES, CONFIG_KEY)
        self.net, self.preprocessing = built.net, built.preprocessing
        return built.file

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.net(clips.transpose(1, 2))  # (B, C, T, H, W) in, (B, num_outputs) out


class Video3DCNN(KineticsVideoModel):
    """Video classifier `(B, T, C, H, W) -> (B, num_outputs)` built on `torchvision.models.video`.

    `weights`: as `KineticsVideoModel`'s (pretrained ones downloaded if missing). The
    ResNet-style archs get a new `fc`; s3d gets a new 1x1x1 output conv, and its fixed
    AvgPool3d((2, 7, 7)) becomes a global average so clips smaller than its 16 x 224 x 224
    minimum work too (for that minimum the two agree).
    `in_channels` != 3 adapts the RGB stem conv (`adapt_input_conv`: for grey clips the
    pretrained kernels are summed, which equals feeding the grey channel repeated as RGB).
    `input_limits` states the smallest clip the arch takes.
    """

    def __init__(
        self,
        num_outputs: int,
        arch: str = "r3d_18",
        weights: str | None = "kinetics400",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"model.arch={arch!r} is not one of {', '.join(ARCHS)}.")
        file = self.build_net(arch, weights)
        if arch == "s3d":
            self.net.avgpool = nn.AdaptiveAvgPool3d(1)
            output_conv = self.net.classifier[1]
            self.net.classifier[1] = nn.Conv3d(output_conv.in_channels, num_outputs, kernel_size=1)
        else:
            self.net.fc = nn.Linear(self.net.fc.in_features, num_outputs)
        if in_channels != 3:
            adapt_first_conv(self.net, in_channels)
        if file is not None:
            file.load_model(self)
        self.input_limits = LIMITS[arch]
