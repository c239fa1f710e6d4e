"""torchvision's video transformers (Video Swin, MViT v1/v2) with a new output layer.

They share the 3D CNNs' weights path (`vidlearn.models.weights`: Kinetics-400 weights from the
torch hub cache, none, or a local state_dict) and stem adaptation (`adapt_first_conv`); what
differs is stochastic depth (`drop_path`) and MViT's fixed clip.
"""

from __future__ import annotations

from torch import nn
from torchvision.ops import StochasticDepth

from vidlearn.errors import ConfigError
from vidlearn.models.cnn3d import KineticsVideoModel
from vidlearn.models.input_conv import adapt_first_conv
from vidlearn.models.limits import InputLimits

ARCHS = ("swin3d_t", "swin3d_s", "swin3d_b", "mvit_v1_b", "mvit_v2_s")
# Found by experiments/find_input_limits.py (experiments/README.md, "Video transformer input
# limits"). Swin pads every clip to its patches and windows and trains on any clip, down to
# 1 x 1 x 1. torchvision builds MViT for 16 x 224 x 224 clips only: its position tables (v1) and
# relative position tables (v2) have one row per patch of that clip, so another clip fails at the
# first block (15 frames and 221-223 pixels give the same patch grid and run too, but they are
# not what the tables were trained on).
_MVIT_CLIP = "torchvision builds MViT's position tables for 16 x 224 x 224 clips"
LIMITS = {
    "swin3d_t": InputLimits("model=swin3d_t"),
    "swin3d_s": InputLimits("model=swin3d_s"),
    "swin3d_b": InputLimits("model=swin3d_b"),
    "mvit_v1_b": InputLimits(
        "model=mvit_v1_b",
        frames=16,
        size=224,
        fixed_by=_MVIT_CLIP,
        hint="or pick model=swin3d_t, which takes any clip",
    ),
    "mvit_v2_s": InputLimits(
        "model=mvit_v2_s",
        frames=16,
        size=224,
        fixed_by=_MVIT_CLIP,
        hint="or pick model=swin3d_t, which takes any clip",
    ),
}


class VideoTransformer(KineticsVideoModel):
    """Video classifier `(B, T, C, H, W) -> (B, num_outputs)` built on `torchvision.models.video`.

    `weights`: as `KineticsVideoModel`'s (pretrained ones downloaded if missing; swin3d_b also
    has KINETICS400_IMAGENET22K_V1). The output linear layer is replaced.
    `in_channels` != 3 adapts the RGB patch-embedding conv as the 3D CNNs adapt their stem.
    `drop_path` is the stochastic depth rate of the last block (torchvision's
    `stochastic_depth_prob`); block i of n drops its residual branch with probability
    `drop_path * i / (n - 1)`, torchvision's linear rule; None keeps torchvision's default for
    the arch (0.1 for Swin, 0.2 for MViT).
    """

    def __init__(
        self,
        num_outputs: int,
        arch: str = "swin3d_t",
        weights: str | None = "kinetics400",
        in_channels: int = 3,
        drop_path: float | None = None,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ConfigError(f"model.arch={arch!r} is not one of {', '.join(ARCHS)}.")
        if drop_path is not None and not 0.0 <= drop_path < 1.0:
            raise ConfigError(
                f"model.drop_path={drop_path} is not a probability in [0, 1); torchvision "
                "trains these backbones with 0.1 (Swin) or 0.2 (MViT)."
            )
        file = self.build_net(arch, weights)
        if drop_path is not None:
            set_drop_path(self.net, drop_path)
        if arch.startswith("swin3d"):
            self.net.head = nn.Linear(self.net.head.in_features, num_outputs)
        else:  # MViT's head is Sequential(Dropout, Linear)
            self.net.head[-1] = nn.Linear(self.net.head[-1].in_features, num_outputs)
        if in_channels != 3:
            adapt_first_conv(self.net, in_channels)
        if file is not None:
            file.load_model(self)
        self.input_limits = LIMITS[arch]


def set_drop_path(network: nn.Module, drop_path: float) -> None:
    """Set the stochastic depth of `network`'s blocks, in order, to `drop_path * i / (n - 1)`.

    The rule torchvision's Swin and MViT builders apply to `stochastic_depth_prob`; set after
    building because the Swin builders do not take it as an argument.
    """
    layers = [module for module in network.modules() if isinstance(module, StochasticDepth)]
    for index, layer in enumerate(layers):
        layer.p = drop_path * index / max(len(layers) - 1, 1)
