"""Training samplers (weighted or shuffled, split between ranks) and the evaluation split.

Every training sampler is built by the DataModule as `sampler(targets=..., table=...)` from a
`conf/sampler/*.yaml` with `_partial_: true`, and draws one global sequence per (seed, epoch)
of which each rank keeps its own block.
"""

from vidlearn.data.samplers.alias import AliasTable
from vidlearn.data.samplers.balancing import (
    BalancedSampler,
    OversampleSampler,
    UniformRegressionSampler,
    WeightsColumnSampler,
)
from vidlearn.data.samplers.epoch_sampler import (
    EpochSampler,
    KeyedSampler,
    ShuffleSampler,
    WeightedSampler,
)
from vidlearn.data.samplers.loss_weights import balanced_class_weights, positive_weight
from vidlearn.data.samplers.report import expected_frequencies
from vidlearn.data.samplers.sharding import EvalShardSampler, resolve_rank

__all__ = [
    "AliasTable",
    "BalancedSampler",
    "EpochSampler",
    "EvalShardSampler",
    "KeyedSampler",
    "OversampleSampler",
    "ShuffleSampler",
    "UniformRegressionSampler",
    "WeightedSampler",
    "WeightsColumnSampler",
    "balanced_class_weights",
    "expected_frequencies",
    "positive_weight",
    "resolve_rank",
]
