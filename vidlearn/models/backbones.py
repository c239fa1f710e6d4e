"""2D image backbones that map `(N, C, H, W)` images to `(N, feature_dim)` feature vectors.

Each backbone exposes `.feature_dim` (the width of its output) and `.preprocessing` (the
mean/std its weights require, or None), so a video model can put any of them under its
`backbone:` config node.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models import WeightsEnum, list_models

from vidlearn.errors import ConfigError
from vidlearn.models.input_conv import adapt_first_conv
from vidlearn.models.limits import InputLimits
from vidlearn.models.weights import (
    Preprocessing,
    build_torchvision,
    file_preprocessing,
    load_checked,
    parse_weights,
    pretrained_choice,
    read_state_dict,
)


class SpatialSoftmax(nn.Module):
    """Expected (x, y) position of each channel's activation, in [-1, 1]: a learned keypoint.

    (N, C, H, W) -> (N, 2C). Unlike average pooling it keeps exact positions, which is what a
    motion task needs (Levine et al., 2016, "End-to-End Training of Deep Visuomotor Policies").
    """

    def forward(self, features: Tensor) -> Tensor:  # (N, C, H, W)
        height, width = features.shape[-2:]
        attention = features.flatten(2).softmax(dim=-1)  # (N, C, H*W)
        ys = torch.linspace(-1.0, 1.0, height, device=features.device, dtype=attention.dtype)
        xs = torch.linspace(-1.0, 1.0, width, device=features.device, dtype=attention.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        x = (attention * grid_x.reshape(-1)).sum(dim=-1)  # (N, C)
        y = (attention * grid_y.reshape(-1)).sum(dim=-1)  # (N, C)
        return torch.cat([x, y], dim=1)  # (N, 2C)


class SmallCNN(nn.Module):
    """A compact from-scratch CNN: (conv3x3-BN-ReLU, max-pool 2) per width, then pooling.

    `pooling="average"` averages each channel over a `pooled_size x pooled_size` grid
    (`pooled_size` > 1 keeps a coarse idea of *where* things are); `pooling="keypoints"` returns
    each channel's expected (x, y) position (SpatialSoftmax), precise enough to follow a moving
    object from frame to frame. Each width halves the frame, so frames need at least
    2 ** len(widths) pixels a side (`input_limits`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
        pooled_size: int = 1,
        pooling: str = "average",
    ) -> None:
        super().__init__()
        if not widths or pooled_size < 1:
            raise ConfigError(
                f"SmallCNN needs at least one width and pooled_size >= 1; got widths={widths!r}, "
                f"pooled_size={pooled_size}. Fix model.backbone.widths / pooled_size."
            )
        if pooling not in ("average", "keypoints"):
            raise ConfigError(
                f"model.backbone.pooling={pooling!r} must be 'average' or 'keypoints'."
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        if pooling == "keypoints":
            layers += [SpatialSoftmax()]
            self.feature_dim = 2 * channels
        else:
            layers += [nn.AdaptiveAvgPool2d(pooled_size), nn.Flatten()]
            self.feature_dim = channels * pooled_size**2
        self.layers = nn.Sequential(*layers)
        self.preprocessing: Preprocessing | None = None
        self.input_limits = InputLimits("SmallCNN", min_size=2 ** len(widths))

    def forward(self, images: Tensor) -> Tensor:  # (N, C, H, W)
        return self.layers(images)  # (N, feature_dim)


# model.backbone.weights=imagenet names each torchvision model's DEFAULT (best) weights.
ALIASES = {"imagenet": "DEFAULT"}
CONFIG_KEY = "model.backbone.weights"


class TorchvisionBackbone(nn.Module):
    """Any torchvision classification model (by `name`) with its final Linear layer removed.

    `weights` (`vidlearn.models.weights.choose_weights`): "imagenet" (the model's DEFAULT
    torchvision weights, downloaded if missing), the name of any of its torchvision weights,
    "none", or a path: torchvision's own file of the model (as its weights URL gives it, e.g.
    resnet18-f37072fd.pth) or a state_dict of this backbone (classifier already removed).
    `in_channels` != 3 adapts the first conv (`adapt_input_conv`: for grey frames the pretrained
    RGB kernels are summed, which equals feeding the grey channel repeated as RGB).
    """

    def __init__(self, name: str, weights: str | None = "imagenet", in_channels: int = 3) -> None:
        super().__init__()
        names = list_models(module=torchvision.models)
        if name not in names:
            raise ConfigError(
                f"model.backbone.name={name!r} is not a torchvision classification model; "
                f"pick one of {', '.join(names)}."
            )
        # torchvision's own file of the network is loaded now, with its classifier
        built = build_torchvision(name, weights, ALIASES, CONFIG_KEY)
        self.net, file = built.net, built.file
        self.feature_dim = _remove_final_linear(self.net, name)
        if in_channels != 3:
            adapt_first_conv(self.net, in_channels)
        if file is not None:
            file.load_model(self)
        self.preprocessing = built.preprocessing

    @staticmethod
    def pretrained_weights(name: str, weights: str | None) -> WeightsEnum | None:
        """The torchvision weights that `name` and `weights` load, or None for none or a file."""
        return pretrained_choice(name, weights, ALIASES, CONFIG_KEY)

    @staticmethod
    def pretrained_preprocessing(name: str, weights: str | None) -> Preprocessing | None:
        """The mean/std of torchvision's weights that a file path names (a file downloaded by
        hand keeps torchvision's name); None otherwise (`pretrained_weights` says the rest)."""
        return file_preprocessing(name, weights, ALIASES, CONFIG_KEY)

    def forward(self, images: Tensor) -> Tensor:  # (N, C, H, W)
        return self.net(images)  # (N, feature_dim)


class TimmBackbone(nn.Module):
    """A timm model (by `name`) without its classifier; needs the optional `timm` package.

    `weights`: "none" or a path to a state_dict of this backbone. vidlearn fetches torchvision's
    pretrained weights only, not timm's (from the Hugging Face hub); save those to a file and
    pass its path.
    """

    def __init__(self, name: str, weights: str | None = None) -> None:
        super().__init__()
        import timm  # optional dependency, imported only when a timm backbone is configured

        choice = parse_weights(weights, "imagenet")
        if choice == "imagenet":
            raise ConfigError(
                f"model.backbone.weights=imagenet is not available for the timm backbone {name!r} "
                "(vidlearn fetches torchvision's pretrained weights only); save the weights with "
                "torch.save(state_dict) and pass model.backbone.weights=/path/to/state_dict.pt, "
                "or pass model.backbone.weights=none."
            )
        self.net = timm.create_model(name, pretrained=False, num_classes=0)
        self.feature_dim: int = self.net.num_features
        if isinstance(choice, Path):
            load_checked(self, read_state_dict(choice), str(choice))
        self.preprocessing: Preprocessing | None = None

    def forward(self, images: Tensor) -> Tensor:  # (N, C, H, W)
        return self.net(images)  # (N, feature_dim)


def _remove_final_linear(model: nn.Module, name: str) -> int:
    """Replace the last nn.Linear of the model's classifier by Identity; returns its input width.

    torchvision names the classifier `fc` (resnet, regnet, ...), `classifier` (mobilenet,
    efficientnet, convnext, vgg, densenet, ...), `head` (swin) or `heads` (vit). Only the final
    Linear goes, so layers before it (convnext's LayerNorm, mobilenet_v3's hidden Linear) stay.
    """
    for attribute in ("fc", "classifier", "head", "heads"):
        head = getattr(model, attribute, None)
        if isinstance(head, nn.Linear):
            setattr(model, attribute, nn.Identity())
            return head.in_features
        if isinstance(head, nn.Sequential):
            linear_indices = [i for i, layer in enumerate(head) if isinstance(layer, nn.Linear)]
            if linear_indices:
                in_features = head[linear_indices[-1]].in_features
                head[linear_indices[-1]] = nn.Identity()
                return in_features
    raise ConfigError(
        f"torchvision model {name!r} has no final nn.Linear under fc/classifier/head/heads "
        "(e.g. squeezenet classifies with a conv); pick another model.backbone.name."
    )
