"""A real 2-process DDP run (gloo, CPU): ranks come from torch.distributed and the shares fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from vidlearn.data.samplers import BalancedSampler, EvalShardSampler, ShuffleSampler

WORLD_SIZE = 2
TARGETS = np.repeat([0, 1, 2], [70, 20, 11])  # 101 items: not a multiple of the world size


def gather_shares(rank: int, init_file: str, out_file: str) -> None:
    """Build each sampler as the DataModule does (no rank arguments) and gather every share."""
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    shares = {}
    for name, sampler in (
        ("balanced", BalancedSampler(TARGETS, seed=3)),
        ("shuffle", ShuffleSampler(TARGETS, seed=3)),
        ("eval", EvalShardSampler(len(TARGETS))),
    ):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(1)
        gathered: list[list[int] | None] = [None] * WORLD_SIZE
        dist.all_gather_object(gathered, list(sampler))
        shares[name] = gathered
    if rank == 0:
        Path(out_file).write_text(json.dumps(shares))
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def shares(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[int]]]:
    """Each sampler's share on rank 0 and rank 1 of one spawned 2-process gloo run."""
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(
        gather_shares, args=(str(folder / "init"), str(folder / "shares.json")), nprocs=WORLD_SIZE
    )
    return json.loads((folder / "shares.json").read_text())


def test_ddp_weighted_shares_are_equal_blocks_of_one_global_draw(shares: dict) -> None:
    first, second = shares["balanced"]
    whole = BalancedSampler(TARGETS, seed=3, rank=0, world_size=1, num_samples=2 * len(first))
    whole.set_epoch(1)
    assert len(first) == len(second) == 51
    assert first + second == list(whole)


def test_ddp_shuffle_shares_have_equal_length_and_cover_every_item(shares: dict) -> None:
    first, second = shares["shuffle"]
    assert len(first) == len(second) == 51
    assert sorted(set(first + second)) == list(range(len(TARGETS)))


def test_ddp_eval_shards_evaluate_every_item_exactly_once(shares: dict) -> None:
    first, second = shares["eval"]
    assert sorted(first + second) == list(range(len(TARGETS)))
