"""Layer-wise learning-rate decay and the weight decay of position tables in the parameter groups."""

from __future__ import annotations

import math
import re
from functools import partial

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from torch import Tensor, nn
from torchvision.models.video import mvit_v1_b, mvit_v2_s, s3d, swin3d_t
from transformers import (
    TimesformerConfig,
    TimesformerForVideoClassification,
    VivitConfig,
    VivitForVideoClassification,
)

from vidlearn.errors import ConfigError
from vidlearn.models.backbones import SmallCNN, TorchvisionBackbone
from vidlearn.models.frame_gru import FrameGRU
from vidlearn.models.layers import layer_ids
from vidlearn.tasks.callbacks import BackboneUnfreeze
from vidlearn.tasks.multiclass import MulticlassTask
from vidlearn.tasks.optim import WarmupCosine, layer_decay_scale, parameter_groups

CLASSES = ["a", "b", "c"]
ADAMW = partial(torch.optim.AdamW, lr=0.1, weight_decay=0.05)
FEATURES = 16  # the task fixtures' clips are (B, 2, 2, 2, 2)
TINY_HF = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    image_size=32,
    num_frames=4,
)


class Embeddings(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.projection = nn.Linear(FEATURES, width)
        self.position_embeddings = nn.Parameter(torch.zeros(1, width))
        self.tokens = nn.Embedding(len(CLASSES), width)  # tied to the head when asked

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.projection(clips.flatten(1)) + self.position_embeddings  # (B, width)


class Encoder(nn.Module):
    def __init__(self, num_blocks: int, width: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width)) for _ in range(num_blocks)
        )


class EncoderNet(nn.Module):
    """A Hugging Face-shaped encoder: `embeddings`, `encoder.layer[i]`, `layernorm`."""

    def __init__(self, num_blocks: int, width: int) -> None:
        super().__init__()
        self.embeddings = Embeddings(width)
        self.encoder = Encoder(num_blocks, width)
        self.layernorm = nn.LayerNorm(width)

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        features = self.embeddings(clips)  # (B, width)
        for block in self.encoder.layer:
            features = block(features)
        return self.layernorm(features)


class EncoderClassifier(nn.Module):
    """EncoderNet as `backbone`, a head, and a parameter of its own (a logit temperature)."""

    def __init__(self, num_blocks: int = 2, width: int = 8, tied: bool = False) -> None:
        super().__init__()
        self.backbone = EncoderNet(num_blocks, width)
        self.head = nn.Linear(width, len(CLASSES))
        if tied:
            self.head.weight = self.backbone.embeddings.tokens.weight
        self.temperature = nn.Parameter(torch.ones(()))

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        return self.head(self.backbone(clips)) * self.temperature  # (B, 3)


def _structure(groups: list[dict]) -> list[tuple]:
    return [
        (g["name"], g["lr_scale"], g.get("weight_decay"), [id(p) for p in g["params"]])
        for g in groups
    ]


decays = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
scales = st.floats(min_value=0.01, max_value=10.0)


@given(
    num_blocks=st.integers(1, 12),
    decay=decays,
    backbone_scale=scales,
    conv_decay=st.none() | st.just(1e-3),
    tied=st.booleans(),
)
def test_every_parameter_is_in_exactly_one_group(
    num_blocks: int, decay: float, backbone_scale: float, conv_decay: float | None, tied: bool
) -> None:
    """Caught planted bugs: dropping the `seen` check (a tied weight then sits in two groups),
    and walking `model.children()` instead of `model.modules()` (the root's own parameter and
    the nested ones were lost)."""
    model = EncoderClassifier(num_blocks, tied=tied)
    groups = parameter_groups(model, backbone_scale, conv_decay, decay)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}


@given(num_blocks=st.integers(1, 12), decay=decays, backbone_scale=scales)
def test_scales_rise_from_stem_to_head_which_keeps_its_rate(
    num_blocks: int, decay: float, backbone_scale: float
) -> None:
    """Caught planted bug: decay ** layer instead of decay ** (num_layers - layer) (the stem got
    the full rate and the head the smallest)."""
    model = EncoderClassifier(num_blocks)
    layering = layer_ids(model)
    scale_of = {
        id(p): group["lr_scale"]
        for group in parameter_groups(model, backbone_scale, layer_decay=decay)
        for p in group["params"]
    }
    backbone = sorted(
        (layering.layer_of[id(p)], scale_of[id(p)]) for p in model.backbone.parameters()
    )
    backbone_scales = [scale for _, scale in backbone]
    assert backbone_scales == sorted(backbone_scales)
    assert scale_of[id(model.backbone.layernorm.weight)] == backbone_scale  # last layer: no decay
    assert scale_of[id(model.head.weight)] == scale_of[id(model.temperature)] == 1.0


@given(num_blocks=st.integers(1, 12), backbone_scale=scales, tied=st.booleans())
def test_layer_decay_1_gives_exactly_the_groups_of_no_layer_decay(
    num_blocks: int, backbone_scale: float, tied: bool
) -> None:
    """Caught planted bug: only None meaning off (1.0 was then refused as outside (0, 1))."""
    model = EncoderClassifier(num_blocks, tied=tied)
    assert _structure(parameter_groups(model, backbone_scale, layer_decay=1.0)) == _structure(
        parameter_groups(model, backbone_scale, layer_decay=None)
    )


@given(num_layers=st.integers(0, 500), decay=decays)
def test_layer_scale_is_monotone_and_exactly_1_at_the_head(num_layers: int, decay: float) -> None:
    """Caught planted bug: decay ** (num_layers - layer + 1) (the head got `decay`, not 1)."""
    factors = [layer_decay_scale(layer, num_layers, decay) for layer in range(num_layers + 1)]
    assert factors == sorted(factors)
    assert factors[-1] == 1.0


def test_layer_decay_multiplies_the_backbone_learning_rate_scale() -> None:
    with torch.device("meta"):
        model = FrameGRU(num_outputs=3, backbone=TorchvisionBackbone("resnet18", weights="none"))
    task = MulticlassTask(model, CLASSES, optimizer=ADAMW, backbone_lr_scale=0.1, layer_decay=0.5)
    groups = {group["name"]: group for group in task.configure_optimizers().param_groups}
    net = model.backbone.net
    assert [p is net.conv1.weight for p in groups["backbone/layer0/default"]["params"]] == [True]
    assert groups["backbone/layer0/default"]["lr"] == pytest.approx(0.1 * 0.1 * 0.5**5)
    assert groups["backbone/layer4/default"]["lr"] == pytest.approx(0.1 * 0.1 * 0.5)
    assert groups["head/layer5/default"]["lr"] == pytest.approx(0.1)  # GRU and output layer


def test_groups_of_a_model_without_backbone_are_named_by_layer() -> None:
    with torch.device("meta"):
        model = nn.Sequential(swin3d_t())
    names = {group["name"] for group in parameter_groups(model, layer_decay=0.75)}
    assert {"layer0/default", "layer0/no_decay", "layer12/default", "layer13/default"} <= names


@pytest.mark.parametrize(
    "model",
    [FrameGRU(num_outputs=3, backbone=SmallCNN()), nn.Sequential(s3d(num_classes=3))],
    ids=["frame_gru", "s3d"],
)
def test_layer_decay_is_refused_by_name_for_a_model_without_known_layers(model) -> None:
    with pytest.raises(ConfigError, match=r"task\.layer_decay=0\.75 .*has none of them.*=null"):
        MulticlassTask(model, CLASSES, optimizer=ADAMW, layer_decay=0.75)


def test_layer_decay_1_is_off_for_any_model() -> None:
    MulticlassTask(FrameGRU(num_outputs=3, backbone=SmallCNN()), CLASSES, layer_decay=1.0)


@pytest.mark.parametrize("decay", [0.0, -0.5, 1.5, math.nan])
def test_layer_decay_outside_0_1_is_refused(decay: float) -> None:
    with pytest.raises(ConfigError, match=r"task\.layer_decay=.* must be in \(0, 1\]"):
        MulticlassTask(EncoderClassifier(), CLASSES, layer_decay=decay)


def _decayed_tables(model: nn.Module) -> set[str]:
    """Names (block numbers as N) of the matrices that the groups keep out of weight decay."""
    no_decay = {
        id(p)
        for group in parameter_groups(model)
        if group.get("weight_decay") == 0.0
        for p in group["params"]
    }
    return {
        re.sub(r"\.\d+(?=\.)", ".N", name)
        for name, p in model.named_parameters()
        if p.ndim >= 2 and id(p) in no_decay
    }


@pytest.mark.parametrize(
    ("build", "tables"),
    [
        (swin3d_t, {"features.N.N.attn.relative_position_bias_table"}),
        (mvit_v1_b, {"pos_encoding.spatial_pos", "pos_encoding.temporal_pos"}),
        (mvit_v2_s, {f"blocks.N.attn.rel_pos_{axis}" for axis in "htw"}),
        (
            lambda: TimesformerForVideoClassification(TimesformerConfig(patch_size=16, **TINY_HF)),
            {
                f"timesformer.embeddings.{name}"
                for name in ("cls_token", "position_embeddings", "time_embeddings")
            },
        ),
        (
            lambda: VivitForVideoClassification(VivitConfig(tubelet_size=[2, 16, 16], **TINY_HF)),
            {"vivit.embeddings.cls_token", "vivit.embeddings.position_embeddings"},
        ),
        (
            lambda: EncoderClassifier(),
            {"backbone.embeddings.position_embeddings", "backbone.embeddings.tokens.weight"},
        ),
    ],
    ids=["swin3d_t", "mvit_v1_b", "mvit_v2_s", "timesformer", "vivit", "embedding_table"],
)
def test_position_tables_and_tokens_are_the_only_matrices_without_weight_decay(
    build, tables: set[str]
) -> None:
    with torch.device("meta"):
        model = build()
    assert _decayed_tables(model) == tables


def test_learning_rate_monitor_logs_each_layer_group_and_the_schedule_keeps_their_ratios(
    make_batch, fit, tmp_path
) -> None:
    task = MulticlassTask(
        EncoderClassifier(num_blocks=2),
        CLASSES,
        optimizer=ADAMW,
        scheduler=WarmupCosine(min_lr_factor=0.5),
        layer_decay=0.5,
    )
    monitor = LearningRateMonitor(logging_interval="epoch")
    batch = make_batch(torch.tensor([0, 1, 2, 0]))
    fit(task, batch, max_epochs=3, logger=CSVLogger(tmp_path), callbacks=[monitor])
    rates = {name: values for name, values in monitor.lrs.items()}
    assert set(rates) >= {"lr-AdamW/backbone/layer0/default", "lr-AdamW/head/layer3/default"}
    stem, head = rates["lr-AdamW/backbone/layer0/default"], rates["lr-AdamW/head/layer3/default"]
    assert head[0] == pytest.approx(0.1)
    assert head[-1] < head[0]  # the cosine moved
    assert [s / h for s, h in zip(stem, head, strict=True)] == pytest.approx([0.5**3] * len(head))


def test_backbone_frozen_at_the_start_trains_at_its_decayed_rates_once_unfrozen(
    make_batch, fit
) -> None:
    """Caught planted bug: leaving parameters with requires_grad False out of the groups (the
    unfrozen stem then never trained)."""
    model = EncoderClassifier(num_blocks=2)
    model.backbone.requires_grad_(False)
    task = MulticlassTask(model, CLASSES, optimizer=ADAMW, layer_decay=0.5)
    stem_before = model.backbone.embeddings.projection.weight.detach().clone()
    batch = make_batch(torch.tensor([0, 1, 2, 0]))
    fit(task, batch, max_epochs=2, callbacks=[BackboneUnfreeze(1)])
    assert not torch.equal(model.backbone.embeddings.projection.weight, stem_before)
