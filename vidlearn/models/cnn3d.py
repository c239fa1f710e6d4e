"""torchvision's 3D CNN video classifiers (R3D, MC3, R(2+1)D, S3D) with a new output layer."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torchvision.models import WeightsEnum, get_model, get_model_weights

from vidlearn.errors import ConfigError
from vidlearn.models.input_conv import adapt_first_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import (
    cached_pretrained,
    load_checked,
    parse_weights,
    preprocessing_for,
    read_state_dict,
)

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
    """Base of the torchvision video classifiers: `net` takes `(B, C, T, H, W)` clips, and its
    pretrained weights are torchvision's KINETICS400_V1 of the arch."""

    net: nn.Module

    @staticmethod
    def pretrained_weights(arch: str, weights: str | None) -> WeightsEnum | None:
        """The torchvision weights that `arch` and `weights` load, or None for none or a file."""
        if parse_weights(weights, "kinetics400") != "kinetics400":
            return None
        return get_model_weights(arch).KINETICS400_V1

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.net(clips.transpose(1, 2))  # (B, C, T, H, W) in, (B, num_outputs) out


class Video3DCNN(KineticsVideoModel):
    """Video classifier `(B, T, C, H, W) -> (B, num_outputs)` built on `torchvision.models.video`.

    `weights`: "kinetics400" (torchvision's KINETICS400_V1, downloaded if missing), "none",
    or a path to a state_dict of this whole model. The ResNet-style archs get a new `fc`; s3d
    gets a new 1x1x1 output conv, and its fixed AvgPool3d((2, 7, 7)) becomes a global average
    so clips smaller than its 16 x 224 x 224 minimum work too (for that minimum the two agree).
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
        choice = parse_weights(weights, "kinetics400")
        pretrained = get_model_weights(arch).KINETICS400_V1
        self.net = get_model(
            arch, weights=cached_pretrained(pretrained) if choice == "kinetics400" else None
        )
        if arch == "s3d":
            self.net.avgpool = nn.AdaptiveAvgPool3d(1)
            output_conv = self.net.classifier[1]
            self.net.classifier[1] = nn.Conv3d(output_conv.in_channels, num_outputs, kernel_size=1)
        else:
            self.net.fc = nn.Linear(self.net.fc.in_features, num_outputs)
        if in_channels != 3:
            adapt_first_conv(self.net, in_channels)
        if isinstance(choice, Path):
            load_checked(self, read_state_dict(choice), str(choice))
        self.preprocessing = preprocessing_for(choice, pretrained)
        self.input_limits = LIMITS[arch]
