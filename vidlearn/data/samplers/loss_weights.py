"""The loss-side alternative to resampling: class weights for cross-entropy, pos_weight for BCE."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from vidlearn.errors import ConfigError

logger = logging.getLogger(__name__)


def balanced_class_weights(targets: np.ndarray, num_classes: int) -> Tensor:
    """n / (num_classes * count_c) per class, shape (num_classes,), for CrossEntropyLoss(weight=).

    A class with no training rows gets weight 0 (it contributes no loss terms in training anyway).
    """
    classes = np.asarray(targets).astype(np.int64)
    if len(classes) == 0 or classes.min() < 0 or classes.max() >= num_classes:
        raise ConfigError(
            f"class weights need targets in 0..{num_classes - 1}, got "
            f"{classes.min() if len(classes) else 'no'} .. {classes.max() if len(classes) else 'targets'}"
        )
    counts = np.bincount(classes, minlength=num_classes).astype(np.float64)
    if (counts == 0).any():
        logger.warning(
            "class weights: classes %s have no training rows; their weight is 0",
            np.flatnonzero(counts == 0).tolist(),
        )
    weights = np.divide(
        len(classes), num_classes * counts, out=np.zeros_like(counts), where=counts > 0
    )
    return torch.tensor(weights, dtype=torch.float32)


def positive_weight(targets: np.ndarray) -> Tensor:
    """negatives / positives, shape (1,), for BCEWithLogitsLoss(pos_weight=) on 0/1 targets."""
    targets = np.asarray(targets)
    positives = int((targets == 1).sum())
    negatives = int((targets == 0).sum())
    if positives + negatives != len(targets) or positives == 0 or negatives == 0:
        raise ConfigError(
            f"pos_weight needs 0/1 targets with both classes present; got {positives} "
            f"positives, {negatives} negatives and {len(targets) - positives - negatives} others"
        )
    return torch.tensor([negatives / positives], dtype=torch.float32)
