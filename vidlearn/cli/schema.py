"""Type checks of the keys every run reads, before anything is built.

Hydra's struct mode already rejects unknown keys (`data.bacth_size=3`); this catches wrong types
(`data.batch_size=abc`, `trainer.max_epochs=1.5`) at start with the full key in the message,
instead of deep inside a DataLoader. Only keys common to every config choice are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError


@dataclass
class TopLevel:
    seed: int
    monitor: str | None
    monitor_mode: str | None
    resume: str | None
    test: bool
    channels_last: bool
    compile: bool


@dataclass
class Data:
    batch_size: int
    num_workers: int
    size: int
    val_fraction: float
    test_fraction: float
    folds: int | None
    fold: int | None
    max_bad_fraction: float
    probe: bool


@dataclass
class Trainer:
    max_epochs: int
    num_nodes: int
    deterministic: bool
    use_distributed_sampler: bool


SECTIONS: dict[str, type] = {"": TopLevel, "data": Data, "trainer": Trainer}


def validate(cfg: DictConfig) -> None:
    """Raise ValueError naming the first key whose value has the wrong type."""
    for section, schema in SECTIONS.items():
        node = cfg if not section else cfg.get(section)
        if node is None:
            continue
        typed = OmegaConf.structured(schema)
        for field in fields(schema):
            if field.name not in node:
                continue
            value = node[field.name]
            try:
                typed[field.name] = value
            except ValidationError as error:
                key = f"{section}.{field.name}" if section else field.name
                reason = str(error).splitlines()[0]
                raise ValueError(f"{key}={value!r} has the wrong type: {reason}") from None
