"""The depth of each parameter in the networks vidlearn knows: layer ids for layer-wise decay.

Layer-wise learning-rate decay (BEiT, MAE, timm's `param_groups_layer_decay`, MMAction2's
`LearningRateDecayOptimizerConstructor`) trains layers near the input more gently than those near
the output, because pretrained early layers hold generic features. It needs each parameter's
depth, which `layer_ids` reads from the network's structure:

- layer 0: the stem (ResNets: the first conv; MobileNetV2: `features[0]`; transformers: patch
  embedding, position tables and class token);
- layers 1 .. num_layers - 1: the stages (ResNet `layer1..4`) or blocks (MobileNetV2 inverted
  residuals, Swin / MViT / Hugging Face encoder blocks), in forward order; a Swin patch-merging
  step goes with the block it feeds;
- layer num_layers: everything else (final norm, classifier, and any head or recurrent layer a
  vidlearn wrapper adds around the network).

Known structures: torchvision VideoResNet (r3d_18, mc3_18, r2plus1d_18), 2D ResNets, MobileNetV2
`features`, SwinTransformer3d, MViT, and Hugging Face encoders (VideoMAE, TimeSformer, ViViT:
`embeddings`, then `encoder.layer` or `layers`). The first one found walking the model's
submodules (outermost first) is used, so a vidlearn wrapper around any of them works.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import ResNet
from torchvision.models.video.mvit import MViT
from torchvision.models.video.resnet import VideoResNet
from torchvision.models.video.swin_transformer import SwinTransformer3d

Stage = list[nn.Module]  # the modules whose parameters share one layer id


class Layering(NamedTuple):
    """`layer_of[id(parameter)]` for every parameter of the model, and the head's layer id."""

    layer_of: dict[int, int]
    num_layers: int


def layer_ids(model: nn.Module) -> Layering | None:
    """The layer id of each of `model`'s parameters, or None if it has no structure known here."""
    for module in model.modules():
        stages = known_stages(module)
        if stages is not None:
            break
    else:
        return None
    num_layers = len(stages)
    layer_of = {id(parameter): num_layers for parameter in model.parameters()}
    for layer, stage in enumerate(stages):
        for part in stage:
            for parameter in part.parameters():
                layer_of[id(parameter)] = layer
    return Layering(layer_of, num_layers)


def known_stages(net: nn.Module) -> list[Stage] | None:
    """[stem, stage or block 1, ...] of a network with a known structure, else None."""
    if isinstance(net, VideoResNet):
        return [[net.stem], [net.layer1], [net.layer2], [net.layer3], [net.layer4]]
    if isinstance(net, ResNet):
        return [[net.conv1, net.bn1], [net.layer1], [net.layer2], [net.layer3], [net.layer4]]
    if isinstance(net, nn.Sequential) and len(net) > 1 and isinstance(net[1], InvertedResidual):
        return [[block] for block in net]  # MobileNetV2 features: stem, 17 blocks, last 1x1 conv
    if isinstance(net, SwinTransformer3d):
        return [[net.patch_embed], *_swin_blocks(net.features)]
    if isinstance(net, MViT):
        return [[net.conv_proj, net.pos_encoding], *([block] for block in net.blocks)]
    blocks = _encoder_blocks(net)
    if blocks is not None and isinstance(getattr(net, "embeddings", None), nn.Module):
        return [[net.embeddings], *([block] for block in blocks)]
    return None


def _encoder_blocks(net: nn.Module) -> nn.ModuleList | None:
    """A Hugging Face encoder's blocks: `encoder.layer` (VideoMAE, TimeSformer) or `layers`
    (ViViT in transformers 5), or None."""
    encoder = getattr(net, "encoder", None)
    for blocks in (getattr(encoder, "layer", None), getattr(net, "layers", None)):
        if isinstance(blocks, nn.ModuleList):
            return blocks
    return None


def _swin_blocks(features: nn.Sequential) -> list[Stage]:
    """One stage per Swin block; each patch-merging step joins the block after it."""
    stages: list[Stage] = []
    pending: Stage = []
    for child in features:
        if isinstance(child, nn.Sequential):  # a stage of SwinTransformerBlocks
            for block in child:
                stages.append([*pending, block])
                pending = []
        else:  # PatchMerging between stages (torchvision ends `features` with a stage)
            pending.append(child)
    return stages
