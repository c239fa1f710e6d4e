"""vidlearn: train video and image classifiers with PyTorch, Lightning and Hydra."""

__version__ = "0.1.0"
