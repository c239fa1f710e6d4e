"""The cardiac cine recipe's CNN-RNN, layer for layer: a SELU frame CNN, an LSTM/GRU, dense SELU.

Keras original: `TimeDistributed` convolutions with BatchNormalization and SELU, SpatialDropout2D
between the conv blocks, an LSTM (or GRU) of 128 units with `return_sequences=True`, Flatten,
Dense(128, selu), and the output Dense. Convolutions use "same" padding: with Keras' default
"valid" the 150 x 150 input shrinks to nothing before the 512-filter block. BatchNorm uses
Keras' momentum 0.99 (torch momentum 0.01) and epsilon 1e-3.
"""

from __future__ import annotations

from torch import Tensor, nn

from vidlearn.errors import ConfigError
from vidlearn.models.limits import InputLimits

RNNS = ("lstm", "gru")
MIN_SIZE = 63  # (63 + 1) // 2 = 32 = 2**5: one pixel left after the five max-pools


class HmsCnnRnn(nn.Module):
    """Video model `(B, num_frames, in_channels, size, size) -> (B, num_outputs)` logits.

    Per frame (shared weights): conv 5x5 stride 2 (32) + BN + SELU; conv 3x3 (32) + BN + SELU +
    max-pool 2; then blocks of 2 x (conv 3x3 + BN + SELU) + max-pool 2 with 64, 128, 256 and 512
    filters, with Dropout2d(`spatial_dropout`) between consecutive blocks. The per-frame maps are
    flattened, a recurrent layer of `rnn_units` returns the whole sequence, which is flattened
    over time into Dense(`dense_units`) + SELU and the output layer. `num_frames`, `in_channels`
    and `size` are arguments because the flatten widths depend on them; the preset takes them
    from the data config, and `input_limits` states them so a mismatch is refused before fit.
    """

    def __init__(
        self,
        num_outputs: int,
        in_channels: int = 1,
        num_frames: int = 25,
        size: int = 150,
        rnn: str = "lstm",
        rnn_units: int = 128,
        dense_units: int = 128,
        spatial_dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if rnn not in RNNS:
            raise ConfigError(f"model.rnn={rnn!r} is not one of {', '.join(RNNS)}.")
        self.num_frames = num_frames
        layers: list[nn.Module] = [
            *_conv_bn_selu(in_channels, 32, kernel_size=5, stride=2),
            *_conv_bn_selu(32, 32),
            nn.MaxPool2d(2),
        ]
        channels = 32
        for index, width in enumerate((64, 128, 256, 512)):
            if index > 0:
                layers.append(nn.Dropout2d(spatial_dropout))
            layers += [
                *_conv_bn_selu(channels, width),
                *_conv_bn_selu(width, width),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.frame_cnn = nn.Sequential(*layers, nn.Flatten())
        spatial = (size + 1) // 2  # the stride-2 "same" conv, then five 2x max-pools
        for _ in range(5):
            spatial //= 2
        if spatial < 1:
            raise ConfigError(
                f"model=hms_cnn_rnn needs data.size >= {MIN_SIZE} (got model.size={size}, which the "
                "preset takes from data.size): its stride-2 conv and five 2x max-pools leave "
                "nothing of smaller frames; raise data.size."
            )
        self.input_limits = InputLimits(
            "model=hms_cnn_rnn", frames=num_frames, size=size, min_size=MIN_SIZE
        )
        frame_dim = channels * spatial**2  # 512 * 2 * 2 for 150 x 150 frames

        rnn_class = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = rnn_class(frame_dim, rnn_units, batch_first=True)
        self.dense = nn.Sequential(nn.Linear(num_frames * rnn_units, dense_units), nn.SELU())
        self.output = nn.Linear(dense_units, num_outputs)

    def conv_parameters(self) -> list[nn.Parameter]:
        """The conv kernels (not biases), the only weights the recipe regularises with L2 1e-3.

        Keras `kernel_regularizer=l2(1e-3)` adds 1e-3 * sum(w ** 2) to the loss; its gradient
        2e-3 * w equals torch's `weight_decay=2e-3` on these parameters (SGD or Adam, not AdamW).
        """
        return [module.weight for module in self.frame_cnn if isinstance(module, nn.Conv2d)]

    def forward(self, clips: Tensor) -> Tensor:  # (B, T, C, H, W)
        B, T = clips.shape[:2]
        if self.num_frames != T:
            raise ConfigError(
                f"HmsCnnRnn was built for model.num_frames={self.num_frames} frames but got clips "
                f"of {T}; set model.num_frames to the data's clip length."
            )
        features = self.frame_cnn(clips.flatten(0, 1))  # (B*T, 512 * h * w)
        sequence, _ = self.rnn(features.view(B, T, -1))  # (B, T, rnn_units)
        return self.output(self.dense(sequence.flatten(1)))  # (B, num_outputs)


def _conv_bn_selu(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01),
        nn.SELU(),
    ]
