"""FrameGRU learns what only frame order reveals: which way a dot circles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.functional import cross_entropy

from vidlearn.models.backbones import SmallCNN
from vidlearn.models.frame_gru import FrameGRU


def circling_dots(num_clips: int, seed: int, num_frames: int = 8, size: int = 32):
    """Clips `(N, T, 1, size, size)` of a dot circling clockwise (label 0) or anticlockwise (1).

    Both classes show the same set of positions, only in opposite orders.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size]
    clips = np.zeros((num_clips, num_frames, 1, size, size), dtype=np.float32)
    labels = rng.integers(0, 2, num_clips)
    for i in range(num_clips):
        start, step = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(25, 45))
        angles = start + step * np.arange(num_frames)
        if labels[i] == 1:
            angles = angles[::-1]
        for t, angle in enumerate(angles):
            y, x = size / 2 + 10 * math.sin(angle), size / 2 + 10 * math.cos(angle)
            clips[i, t, 0] = ((rows - y) ** 2 + (columns - x) ** 2 <= 6.0).astype(np.float32)
    return torch.from_numpy(clips), torch.from_numpy(labels)


@pytest.mark.slow
def test_frame_gru_learns_the_direction_of_a_circling_dot() -> None:
    torch.manual_seed(0)
    train_clips, train_labels = circling_dots(256, seed=0)
    val_clips, val_labels = circling_dots(128, seed=1)
    backbone = SmallCNN(in_channels=1, widths=(8, 16, 32), pooled_size=4)
    model = FrameGRU(num_outputs=2, backbone=backbone, hidden_size=32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(15):
        model.train()
        for batch in torch.randperm(256).split(16):
            loss = cross_entropy(model(train_clips[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(val_clips).argmax(1) == val_labels).float().mean().item()
    assert accuracy >= 0.9
