"""Layer ids of the known network structures: stem 0, stages or blocks in forward order, head last.

Networks are built on the meta device (no weights allocated): only their structure matters.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.video import mvit_v1_b, mvit_v2_s, s3d, swin3d_b, swin3d_t
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VideoMAEConfig,
    VideoMAEForVideoClassification,
    VivitConfig,
    VivitForVideoClassification,
)

from vidlearn.models.backbones import SmallCNN, TorchvisionBackbone
from vidlearn.models.cnn3d import Video3DCNN
from vidlearn.models.frame_gru import FrameGRU
from vidlearn.models.layers import layer_ids
from vidlearn.models.mobilenet_v2 import MobileNetV2Classifier

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    image_size=32,
    num_frames=4,
)


class Wrapper(nn.Module):
    """A vidlearn-style wrapper: the network under `net`, a new output layer beside it."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.head = nn.Linear(8, 3)


def _layer(model: nn.Module, parameter: nn.Parameter) -> int:
    layering = layer_ids(model)
    assert layering is not None
    return layering.layer_of[id(parameter)]


def _num_layers(model: nn.Module) -> int:
    layering = layer_ids(model)
    assert layering is not None
    return layering.num_layers


@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_video_resnets_number_stem_stages_and_new_output_layer(arch: str) -> None:
    with torch.device("meta"):
        model = Video3DCNN(num_outputs=3, arch=arch, weights="none")
    net = model.net
    assert _num_layers(model) == 5
    assert _layer(model, net.stem[0].weight) == 0
    stages = [net.layer1, net.layer2, net.layer3, net.layer4]
    for stage_id, stage in enumerate(stages, start=1):
        assert {_layer(model, p) for p in stage.parameters()} == {stage_id}
    assert _layer(model, net.fc.weight) == 5


def test_s3d_has_no_stages_to_number() -> None:
    with torch.device("meta"):
        assert layer_ids(Wrapper(s3d())) is None


def test_2d_resnet_inside_a_frame_model_puts_the_recurrent_part_with_the_head() -> None:
    with torch.device("meta"):
        backbone = TorchvisionBackbone("resnet18", weights="none")
        model = FrameGRU(num_outputs=3, backbone=backbone)
    net = backbone.net
    assert _layer(model, net.conv1.weight) == _layer(model, net.bn1.bias) == 0
    assert _layer(model, net.layer2[0].conv1.weight) == 2
    assert _layer(model, next(model.rnn.parameters())) == _layer(model, model.head.weight) == 5


def test_frame_model_on_the_small_cnn_has_no_known_structure() -> None:
    model = FrameGRU(num_outputs=3, backbone=SmallCNN())
    assert layer_ids(model) is None


def test_mobilenet_v2_numbers_each_feature_block() -> None:
    with torch.device("meta"):
        model = MobileNetV2Classifier(num_outputs=3, weights="none", freeze=0)
    assert _num_layers(model) == 19  # features[0] .. features[18], then the dense head
    assert _layer(model, model.features[0][0].weight) == 0
    assert _layer(model, model.features[5].conv[0][0].weight) == 5
    assert _layer(model, model.features[18][0].weight) == 18
    assert _layer(model, model.head[0].weight) == 19


@pytest.mark.parametrize(("build", "depths"), [(swin3d_t, [2, 2, 6, 2]), (swin3d_b, [2, 2, 18, 2])])
def test_swin_numbers_each_block_and_merges_patches_with_the_next_block(build, depths) -> None:
    with torch.device("meta"):
        model = Wrapper(build())
    net = model.net
    num_blocks = sum(depths)
    assert _num_layers(model) == num_blocks + 1
    assert _layer(model, net.patch_embed.proj.weight) == 0
    assert _layer(model, net.features[0][1].attn.relative_position_bias_table) == 2
    first_of_stage_2 = depths[0] + 1  # features[1] merges patches for features[2][0]
    assert _layer(model, net.features[1].reduction.weight) == first_of_stage_2
    assert _layer(model, net.features[2][0].mlp[0].weight) == first_of_stage_2
    last = net.features[-1][-1]
    assert _layer(model, last.norm2.weight) == num_blocks
    for head_part in (net.norm.weight, net.head.weight, model.head.weight):
        assert _layer(model, head_part) == num_blocks + 1


@pytest.mark.parametrize("build", [mvit_v1_b, mvit_v2_s])
def test_mvit_numbers_projection_and_positions_0_then_each_block(build) -> None:
    with torch.device("meta"):
        model = Wrapper(build())
    net = model.net
    assert _num_layers(model) == 17  # 16 blocks
    assert _layer(model, net.conv_proj.weight) == 0
    assert _layer(model, net.pos_encoding.class_token) == 0
    assert _layer(model, net.blocks[0].attn.qkv.weight) == 1
    assert _layer(model, net.blocks[15].mlp[0].weight) == 16
    assert _layer(model, net.norm.weight) == _layer(model, net.head[1].weight) == 17


@pytest.mark.parametrize(
    ("build", "inner"),
    [
        (
            lambda: VideoMAEForVideoClassification(
                VideoMAEConfig(patch_size=16, tubelet_size=2, **TINY)
            ),
            "videomae",
        ),
        (
            lambda: TimesformerForVideoClassification(TimesformerConfig(patch_size=16, **TINY)),
            "timesformer",
        ),
        (
            lambda: VivitForVideoClassification(VivitConfig(tubelet_size=[2, 16, 16], **TINY)),
            "vivit",
        ),
    ],
)
def test_hugging_face_encoders_number_embeddings_then_each_encoder_layer(build, inner) -> None:
    model = Wrapper(build())
    encoder_model = getattr(model.net, inner)
    blocks = getattr(encoder_model, "layers", None) or encoder_model.encoder.layer
    assert _num_layers(model) == 3  # 2 encoder layers
    for parameter in encoder_model.embeddings.parameters():
        assert _layer(model, parameter) == 0
    for index, block in enumerate(blocks, start=1):
        assert {_layer(model, p) for p in block.parameters()} == {index}
    assert _layer(model, model.net.classifier.weight) == _layer(model, model.head.weight) == 3
