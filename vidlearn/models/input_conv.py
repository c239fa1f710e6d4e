"""Fit a pretrained RGB network's first convolution to another number of input channels."""

from __future__ import annotations

import math

from torch import nn


def adapt_input_conv(conv: nn.Conv2d | nn.Conv3d, in_channels: int) -> nn.Conv2d | nn.Conv3d:
    """A copy of the RGB conv `conv` that takes `in_channels` inputs, as timm's adapt_input_conv.

    For 1 channel the RGB kernels are summed, so a grey frame gives the activations the
    pretrained net gives for that frame repeated as RGB (the same result as repeating the grey
    channel three times, without the copies); for other counts the RGB kernels are repeated and
    scaled by 3/in_channels.
    """
    weight = conv.weight.detach()  # (out, 3, *kernel)
    if in_channels == 1:
        weight = weight.sum(dim=1, keepdim=True)  # (out, 1, *kernel)
    else:
        repeats = math.ceil(in_channels / weight.shape[1])
        tiled = weight.repeat(1, repeats, *[1] * (weight.dim() - 2))
        weight = tiled[:, :in_channels] * (weight.shape[1] / in_channels)
    adapted = type(conv)(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
    )
    adapted.weight.data.copy_(weight)
    if conv.bias is not None:
        adapted.bias.data.copy_(conv.bias.detach())
    return adapted


def adapt_first_conv(network: nn.Module, in_channels: int) -> None:
    """Replace, in place, the first Conv2d/Conv3d of `network` by one taking `in_channels`."""
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d | nn.Conv3d):
            parent_name, _, attribute = name.rpartition(".")
            parent = network.get_submodule(parent_name) if parent_name else network
            setattr(parent, attribute, adapt_input_conv(module, in_channels))
            return
    raise ValueError(
        f"{type(network).__name__} has no Conv2d/Conv3d to adapt to {in_channels} channels"
    )
