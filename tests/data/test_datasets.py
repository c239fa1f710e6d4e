"""VideoClipDataset's batched fetch (`__getitems__`): the items of single fetches, written
straight into one batch tensor that `collate` takes without stacking."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.datasets import collate
from vidlearn.data.sample_keys import SampleKey

KEYS = [SampleKey(index=i, seed=0, epoch=1, position=p) for p, i in enumerate([3, 0, 7, 3, 5])]


def train_dataset(manifest: Path, **options: object) -> torch.utils.data.Dataset:
    """The train split's VideoClipDataset of the demo videos: 4 frames of 32x32."""
    datamodule = VideoDataModule(
        label_kind="multiclass",
        manifest=str(manifest),
        frames=4,
        size=32,
        batch_size=4,
        train_clip_sampler=RandomClipSampler(4),
        eval_clip_sampler=CenterClipSampler(4),
        num_workers=0,
        **options,
    )
    datamodule.setup("fit")
    return datamodule.datasets["train"]


def strong() -> list:
    conf = Path(__file__).resolve().parents[2] / "conf" / "augment" / "strong.yaml"
    return instantiate(OmegaConf.load(conf)).transforms


def assert_same_batches(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key in first:
        if key == "skipped":
            assert first[key] == second[key]
        else:
            assert first[key].dtype == second[key].dtype, key
            assert torch.equal(first[key], second[key]), key


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"augment": "strong"},
        {"normalise_on_device": True},
        {"normalise_on_device": True, "per_frame_max_norm": True},
        {"per_frame_max_norm": True, "augment": "strong"},
        {"frame_cache": "cache"},
    ],
    ids=["float32", "augmented", "uint8", "uint8_with_peaks", "max_norm_augmented", "cached"],
)
def test_a_batch_fetched_at_once_equals_its_items_fetched_one_by_one(
    demo_videos: Path, tmp_path: Path, options: dict
) -> None:
    options = dict(options)
    if options.get("augment") == "strong":
        options["augment"] = strong()
    if "frame_cache" in options:
        options["frame_cache"] = str(tmp_path / "cache")
    dataset = train_dataset(demo_videos, **options)
    one_by_one = collate([dataset[key] for key in KEYS])
    assert_same_batches(collate(dataset.__getitems__(KEYS)), one_by_one)


def test_collate_takes_a_fetched_batch_as_it_is(demo_videos: Path) -> None:
    items = train_dataset(demo_videos).__getitems__(KEYS)
    batch = collate(items)
    assert batch["input"].shape == (len(KEYS), 4, 3, 32, 32)
    assert all(
        batch["input"][slot].data_ptr() == item["input"].data_ptr()
        for slot, item in enumerate(items)
    )


def test_collate_stacks_inputs_that_are_not_one_batch(demo_videos: Path) -> None:
    dataset = train_dataset(demo_videos)
    items = dataset.__getitems__(KEYS)
    items[1], items[2] = items[2], items[1]  # the views of one batch, out of order
    batch = collate(items)
    assert torch.equal(batch["input"], torch.stack([item["input"] for item in items]))


def test_an_unreadable_file_is_replaced_in_its_own_slot(demo_videos: Path) -> None:
    dataset = train_dataset(demo_videos)
    dataset.paths[7] = str(demo_videos.parent / "missing.mp4")
    one_by_one = collate([dataset[key] for key in KEYS])
    batch = collate(dataset.__getitems__(KEYS))
    assert [record.path for record in batch["skipped"]] == [dataset.paths[7]]
    assert_same_batches(batch, one_by_one)


def test_collate_stacks_parts_of_a_batch_that_are_not_whole_slots() -> None:
    base = torch.rand(2, 3, 4)
    items = [
        {"input": base[slot, :2], "target": torch.tensor(slot), "skipped": []} for slot in (0, 1)
    ]
    assert torch.equal(collate(items)["input"], base[:, :2])
