"""Silence third-party messages a vidlearn user cannot act on, and nothing else.

Each entry says why it is noise here; a message that points at something the user can change
(too few batches for the logging interval, a dataloader bottleneck) stays.
"""

from __future__ import annotations

import logging
import warnings

# Lightning's advertisements for its cloud products, logged on every fit.
_ADVERT_PREFIX = "💡 Tip:"
_LIGHTNING_INFO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVERT_PREFIX)


def silence_third_party_noise() -> None:
    """Install the filters; idempotent, so every console script can call it at start."""
    for name in _LIGHTNING_INFO_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(existing, _DropAdverts) for existing in log.filters):
            log.addFilter(_DropAdverts())
    # The CSV logger writes into the run directory, which already holds config.yaml and
    # splits.csv by design; claim_run_dir guarantees no earlier run's logs are in it.
    warnings.filterwarnings(
        "ignore", message=r"Experiment logs directory .* exists and is not empty"
    )
    # The task's on_after_batch_transfer (normalise and augment on the device, see
    # docs/architecture.md) is the one meant to run; vidlearn's DataModules never override it,
    # so Lightning's notice that it will use the LightningModule's is true and nothing to act on.
    warnings.filterwarnings(
        "ignore",
        message=r"You have overridden `on_after_batch_transfer` in `LightningModule` but have "
        r"passed in a `LightningDataModule`",
    )
    # Lightning 2.6 calls a torch pytree API that torch 2.10+ deprecates; nothing to do on our side.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # On a SLURM login node Lightning suggests prepending `srun`; vidlearn reaches SLURM through
    # `hydra/launcher=slurm` (submitit submits each job itself, see docs/scale.md), so the hint
    # points the wrong way.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
