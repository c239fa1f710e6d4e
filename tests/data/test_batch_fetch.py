"""A batch fetched at once (`SampleDataset.__getitems__`, which torch's DataLoader calls with a
batch's keys) against its items fetched one by one and collated: the same batch, key for key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vidlearn.data.clip_sampling import RandomClipSampler, UniformSegmentSampler
from vidlearn.data.datamodules import VideoDataModule
from vidlearn.data.datasets import VideoClipDataset, collate
from vidlearn.data.sample_keys import SampleKey
from vidlearn.data.transforms import ClipTransform
from vidlearn.data.video import ArrayReader

CONF = Path(__file__).resolve().parents[2] / "conf"


def write_clips(folder: Path, count: int, shape: tuple[int, ...], dtype: type = np.uint8) -> list:
    rng = np.random.default_rng(len(shape) + count)
    paths = []
    for index in range(count):
        path = folder / f"clip{index}.npy"
        np.save(path, (rng.random(shape) * 250).astype(dtype))
        paths.append(str(path))
    return paths


def hms_cine() -> list:
    return instantiate(OmegaConf.load(CONF / "augment" / "hms_cine.yaml")).transforms


def keys(count: int, epoch: int = 0) -> list[SampleKey]:
    return [SampleKey(index=(5 * i) % count, seed=3, epoch=epoch, position=i) for i in range(6)]


def assert_same_batch(ours: dict, expected: dict) -> None:
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert ours[name].dtype == value.dtype and torch.equal(ours[name], value), name
        else:
            assert ours[name] == value, name


CASES = {
    # (frame shape (T, H, W[, C]), dtype, augmentation, size, per-frame max norm, normalise)
    "uint8 cine clips, no augmentation (read into the batch)": (
        (9, 12, 12),
        np.uint8,
        False,
        12,
        True,
        False,
    ),
    "uint8 cine clips, hms_cine": ((9, 12, 12), np.uint8, True, 12, True, False),
    "uint8, resized, normalised in the worker": ((9, 16, 14), np.uint8, False, 12, False, True),
    "three channels": ((9, 12, 12, 3), np.uint8, True, 12, False, False),
    "float frames": ((9, 12, 12), np.float32, False, 12, True, False),
}


@pytest.mark.parametrize("case", CASES)
def test_a_batch_fetched_at_once_equals_its_items_fetched_one_by_one(
    case: str, tmp_path: Path
) -> None:
    shape, dtype, augment, size, max_norm, normalise = CASES[case]
    paths = write_clips(tmp_path, 4, shape, dtype)
    transform = ClipTransform(
        hms_cine() if augment else [],
        size,
        [0.5] * (shape[3] if len(shape) == 4 else 1),
        [0.25] * (shape[3] if len(shape) == 4 else 1),
        per_frame_max_norm=max_norm,
        normalise=normalise,
    )
    dataset = VideoClipDataset(paths, np.arange(4.0), RandomClipSampler(5), transform)
    batch_keys = keys(len(paths))
    expected = collate([dataset[key] for key in batch_keys])
    assert_same_batch(collate(dataset.__getitems__(batch_keys)), expected)


def test_an_unreadable_file_in_a_batch_is_substituted_as_for_one_item(tmp_path: Path) -> None:
    paths = write_clips(tmp_path, 4, (9, 12, 12))
    Path(paths[1]).write_bytes(Path(paths[1]).read_bytes()[:-500])  # truncated
    transform = ClipTransform([], 12, [0.5], [0.25], per_frame_max_norm=True, normalise=False)
    dataset = VideoClipDataset(paths, np.arange(4.0), RandomClipSampler(5), transform)
    batch_keys = [SampleKey(index, 0, 0, index) for index in (0, 1, 2, 1)]
    expected = collate([dataset[key] for key in batch_keys])
    ours = collate(dataset.__getitems__(batch_keys))
    assert [record.path for record in ours["skipped"]] == [paths[1], paths[1]]
    assert_same_batch(ours, expected)


def test_clips_that_cannot_share_a_batch_fail_as_they_did_item_by_item(tmp_path: Path) -> None:
    grey = write_clips(tmp_path, 2, (9, 12, 12))
    (tmp_path / "colour").mkdir()
    colour = write_clips(tmp_path / "colour", 1, (9, 12, 12, 3))
    transform = ClipTransform([], 12, [0.5], [0.25], normalise=False)
    dataset = VideoClipDataset(grey + colour, np.arange(3.0), RandomClipSampler(5), transform)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        collate([dataset[index] for index in range(3)])
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        collate(dataset.__getitems__(list(range(3))))


def test_array_frames_read_into_a_given_array_land_there(tmp_path: Path) -> None:
    (path,) = write_clips(tmp_path, 1, (9, 12, 12))
    reader = ArrayReader(path)
    out = np.zeros((3, 12, 12, 1), np.uint8)
    frames = reader.read([2, 3, 7], out=out)
    assert np.shares_memory(frames, out) and np.array_equal(out[..., 0], np.load(path)[[2, 3, 7]])


def test_array_frames_are_read_anew_when_the_given_array_does_not_fit(tmp_path: Path) -> None:
    (path,) = write_clips(tmp_path, 1, (9, 12, 12))
    out = np.zeros((2, 12, 12, 1), np.uint8)  # two frames, three asked for
    frames = ArrayReader(path).read([2, 3, 7], out=out)
    assert not np.shares_memory(frames, out) and (out == 0).all()
    assert np.array_equal(frames[..., 0], np.load(path)[[2, 3, 7]])


def cine_datamodule(manifest: Path, workers: int) -> VideoDataModule:
    datamodule = VideoDataModule(
        label_kind="regression",
        manifest=str(manifest),
        frames=5,
        size=12,
        augment=hms_cine(),
        batch_size=4,
        num_workers=workers,
        val_fraction=0.0,
        test_fraction=0.0,
        per_frame_max_norm=True,
        normalise_on_device=True,
        mean=[0.5],
        std=[0.25],
        train_clip_sampler=UniformSegmentSampler(5),
        eval_clip_sampler=UniformSegmentSampler(5, random_offset=False),
    )
    datamodule.setup("fit")
    return datamodule


def test_cine_batches_are_identical_with_0_and_2_workers_and_to_their_items(
    tmp_path: Path,
) -> None:
    paths = write_clips(tmp_path, 10, (9, 12, 12))
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\n" + "".join(f"{path},{i}.5\n" for i, path in enumerate(paths)))
    batches = {}
    for workers in (0, 2):
        loader = cine_datamodule(manifest, workers).train_dataloader()
        loader.sampler.set_epoch(1)
        batches[workers] = list(loader)
    dataset = cine_datamodule(manifest, 0).datasets["train"]
    loader = cine_datamodule(manifest, 0).train_dataloader()
    loader.sampler.set_epoch(1)
    one_by_one = [
        collate([dataset[key] for key in batch_keys]) for batch_keys in loader.batch_sampler
    ]
    assert len(batches[0]) == len(batches[2]) == len(one_by_one) == 2
    for ours, theirs, expected in zip(batches[0], batches[2], one_by_one, strict=True):
        assert_same_batch(ours, expected)
        assert_same_batch(theirs, expected)


def test_inputs_numpy_cannot_hold_are_batched_as_item_by_item(tmp_path: Path) -> None:
    """A transform returning bfloat16 (NumPy has no such dtype): the batch was built through
    NumPy and failed with TypeError, where collating the items works."""
    paths = write_clips(tmp_path, 3, (9, 12, 12))

    def to_bfloat16(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(frames).permute(0, 3, 1, 2).to(torch.bfloat16)

    dataset = VideoClipDataset(paths, np.arange(3.0), RandomClipSampler(5), to_bfloat16)
    batch_keys = keys(len(paths))
    expected = collate([dataset[key] for key in batch_keys])
    assert_same_batch(collate(dataset.__getitems__(batch_keys)), expected)


def test_an_empty_batch_fetches_no_items_as_item_by_item(tmp_path: Path) -> None:
    """A batch sampler may hand over no keys; `__getitems__([])` raised IndexError (keys[0])."""
    paths = write_clips(tmp_path, 2, (9, 12, 12))
    transform = ClipTransform([], 12, [0.5], [0.25])
    dataset = VideoClipDataset(paths, np.arange(2.0), RandomClipSampler(5), transform)
    assert dataset.__getitems__([]) == [dataset[key] for key in []]
