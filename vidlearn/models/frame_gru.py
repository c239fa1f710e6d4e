"""A frame CNN + recurrent network: the Keras `TimeDistributed(CNN) -> GRU` video classifier.

One 2D backbone with shared weights encodes every frame (time folded into the batch), a GRU or
LSTM reads the per-frame features in order, a readout reduces time, and a linear head gives
logits. `temporal="mean"` swaps the recurrent layer for an order-agnostic mean of the frame
features: the baseline that shows whether a task needs frame order at all.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vidlearn.errors import ConfigError
from vidlearn.models.limits import InputLimits

TEMPORAL = ("rnn", "mean")
RNNS = ("gru", "lstm")
READOUTS = ("last", "mean", "attention")


class FrameGRU(nn.Module):
    """Video classifier `(B, T, C, H, W) -> (B, num_outputs)`: frame backbone, RNN, readout, head.

    `backbone` is any module mapping `(N, C, H, W) -> (N, backbone.feature_dim)`, e.g.
    `vidlearn.models.backbones.SmallCNN` or `TorchvisionBackbone`, given as a nested `_target_`
    config node. Readouts: "last" = the final hidden state of the last layer (both directions'
    final states concatenated when bidirectional), "mean" = the average RNN output over time,
    "attention" = a softmax-weighted average with learned per-step scores. `frame_chunk_size`
    runs the backbone over at most that many frames at a time to bound activation memory; in
    train mode BatchNorm then uses per-chunk statistics, in eval mode the output is identical.
    """

    def __init__(
        self,
        num_outputs: int,
        backbone: nn.Module,
        temporal: str = "rnn",
        rnn: str = "gru",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        rnn_dropout: float = 0.0,
        readout: str = "last",
        dropout: float = 0.0,
        freeze_backbone: bool = False,
        frame_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_choice("model.temporal", temporal, TEMPORAL)
        _check_choice("model.rnn", rnn, RNNS)
        _check_choice("model.readout", readout, READOUTS)
        if frame_chunk_size is not None and frame_chunk_size < 1:
            raise ConfigError(
                f"model.frame_chunk_size must be >= 1 or null; got {frame_chunk_size}."
            )
        if not isinstance(getattr(backbone, "feature_dim", None), int):
            raise ConfigError(
                f"model.backbone ({type(backbone).__name__}) has no integer `feature_dim`; use a "
                "backbone from vidlearn.models.backbones."
            )
        self.backbone = backbone
        # Any clip length; the frame size is the backbone's business.
        backbone_limits = getattr(backbone, "input_limits", None)
        self.input_limits = InputLimits(
            f"model=frame_gru (backbone {type(backbone).__name__})",
            min_size=backbone_limits.min_size if backbone_limits else 1,
        )
        self.temporal = temporal
        self.readout = readout
        self.freeze_backbone = freeze_backbone
        self.frame_chunk_size = frame_chunk_size
        if freeze_backbone:
            self.backbone.requires_grad_(False)

        if temporal == "rnn":
            rnn_class = nn.GRU if rnn == "gru" else nn.LSTM
            self.rnn = rnn_class(
                backbone.feature_dim,
                hidden_size,
                num_layers=num_layers,
                batch_first=True,
                bidirectional=bidirectional,
                dropout=rnn_dropout,  # between stacked layers only, as in torch
            )
            sequence_dim = hidden_size * (2 if bidirectional else 1)
            if readout == "attention":
                self.attention = nn.Linear(sequence_dim, 1)
        else:
            sequence_dim = backbone.feature_dim
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sequence_dim, num_outputs)

    def train(self, mode: bool = True) -> FrameGRU:
        """Set train/eval mode; a frozen backbone stays in eval so its BatchNorm stats stay put."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        B, T = clips.shape[:2]
        frames = clips.flatten(0, 1)  # (B*T, C, H, W): TimeDistributed, shared weights
        if self.frame_chunk_size is None:
            features = self.backbone(frames)  # (B*T, F)
        else:
            chunks = frames.split(self.frame_chunk_size)
            features = torch.cat([self.backbone(chunk) for chunk in chunks])  # (B*T, F)
        features = features.view(B, T, -1)  # (B, T, F)
        pooled = self._pool_time(features)  # (B, D * hidden_size), or (B, F) for "mean"
        return self.head(self.dropout(pooled))  # (B, num_outputs)

    def _pool_time(self, features: Tensor) -> Tensor:  # (B, T, F)
        if self.temporal == "mean":
            return features.mean(dim=1)
        outputs, state = self.rnn(features)  # outputs (B, T, D * hidden_size)
        if self.readout == "mean":
            return outputs.mean(dim=1)
        if self.readout == "attention":
            weights = torch.softmax(self.attention(outputs), dim=1)  # (B, T, 1)
            return (weights * outputs).sum(dim=1)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM state is (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        last_layer = hidden.view(self.rnn.num_layers, directions, *hidden.shape[1:])[-1]
        # (D, B, hidden_size): forward direction's state after frame T-1, backward's after frame 0
        return last_layer.transpose(0, 1).flatten(1)  # (B, D * hidden_size)


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices)}.")
