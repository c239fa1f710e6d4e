"""Pretrained weights before data: a missing weights file is reported before the data is set up.

Setting up the data (reading the manifest, checking every file, reading channels) can take
minutes on a large data set; a model whose pretrained weights cannot be had would only fail
after it. Every class in the model config that loads torchvision weights states which with a
`pretrained_weights(...)` static method taking a subset of its own constructor arguments; a
class whose weights come from elsewhere (the Hugging Face video models) has instead a
`pretrained_preprocessing(...)` that finds its weights (raising when it cannot) and returns
their normalisation; a torchvision model's `pretrained_preprocessing` gives that of torchvision's
own weights file passed as a path (downloaded by hand), which needs no download.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

from hydra.utils import get_class
from omegaconf import DictConfig
from torchvision.models import WeightsEnum

from vidlearn.models.weights import Preprocessing, cached_pretrained, preprocessing_of


def fetch_pretrained(model_cfg: DictConfig) -> None:
    """Resolve every pretrained weights file `model_cfg` (with nested `_target_` nodes) loads.

    Raises the weights module's error (which says where the file goes and how to do without)
    for the first one that is unavailable.
    """
    for weights in pretrained_weights(model_cfg):
        cached_pretrained(weights)
    for node in _target_nodes(model_cfg):
        _own_preprocessing(node)


def weights_preprocessing(model_cfg: DictConfig) -> Preprocessing | None:
    """The normalisation the first pretrained weights of `model_cfg` were trained with.

    None when the model loads no pretrained weights (random initialisation or a local file).
    """
    for node in _target_nodes(model_cfg):
        found = _own_preprocessing(node)
        if found is None:
            weights = _torchvision_weights(node)
            found = preprocessing_of(weights) if weights is not None else None
        if found is not None:
            return found
    return None


def pretrained_weights(model_cfg: DictConfig) -> Iterator[WeightsEnum]:
    """The torchvision weights each node of `model_cfg` loads, outermost first."""
    for node in _target_nodes(model_cfg):
        weights = _torchvision_weights(node)
        if weights is not None:
            yield weights


def _torchvision_weights(node: DictConfig) -> WeightsEnum | None:
    resolve = getattr(get_class(node._target_), "pretrained_weights", None)
    return None if resolve is None else resolve(**_arguments(resolve, node))


def _own_preprocessing(node: DictConfig) -> Preprocessing | None:
    resolve = getattr(get_class(node._target_), "pretrained_preprocessing", None)
    return None if resolve is None else resolve(**_arguments(resolve, node))


def _arguments(method: Callable, node: DictConfig) -> dict[str, object]:
    """The values of `node` that `method` takes, by parameter name."""
    return {name: node[name] for name in inspect.signature(method).parameters if name in node}


def _target_nodes(node: DictConfig) -> Iterator[DictConfig]:
    if "_target_" in node:
        yield node
    for _, value in node.items_ex(resolve=False):  # ${data.channels} is unknown until setup
        if isinstance(value, DictConfig):
            yield from _target_nodes(value)
