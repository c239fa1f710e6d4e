"""The cine recipe on the uint8 path: per-frame max normalisation with data.normalise_on_device.

Tolerance: none. Workers collate uint8 clips and each frame's peak (`peak` (B, T) float32, read
before resizing), and the task's normalisation runs the worker path's float32 operations, so
model inputs are bit-identical on the CPU (a GPU may round the multiply differently by 1 ulp).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn

from vidlearn.data.datamodules import VideoDataModule
from vidlearn.tasks.regression import RegressionTask

AUGMENT_DIR = Path(__file__).resolve().parents[2] / "conf" / "augment"


def write_edge_arrays(folder: Path, dtype: type) -> Path:
    """labels.csv of 10 (6, 40, 36) arrays of `dtype`, frames peaking at 30% to 100% of its
    range, each with one black frame."""
    (folder / "arrays").mkdir()
    rng = np.random.default_rng(0)
    for index in range(10):
        top = np.iinfo(dtype).max * np.linspace(0.3, 1.0, 6)[:, None, None]  # a peak per frame
        array = (rng.random((6, 40, 36)) * top).astype(dtype)
        array[index % 6] = 0
        np.save(folder / "arrays" / f"s{index}.npy", array)
    rows = "".join(f"s{index},{index}\n" for index in range(10))
    (folder / "labels.csv").write_text("id,label\n" + rows)
    return folder / "labels.csv"


def prepared_inputs(datamodule: VideoDataModule, split: str) -> tuple[list[dict], list[Tensor]]:
    """A split's batches as the loader yields them, and each `input` as the task's model receives
    it (normalised on the device when the DataModule says so)."""
    task = RegressionTask(nn.Identity(), normalise=datamodule.batch_normalisation())
    batches = list(getattr(datamodule, f"{split}_dataloader")())
    training = split == "train"
    return batches, [task.prepare_batch(batch, training)["input"] for batch in batches]


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])  # uint16 is read as float32
def test_uint8_cine_batches_give_the_float_paths_model_inputs(
    tmp_path: Path, cine_datamodule: Callable[..., VideoDataModule], split: str, dtype: type
) -> None:
    """Caught (planted): the task normalising without the batch's `peak` (every case failed)."""
    labels = write_edge_arrays(tmp_path, dtype)
    augment = instantiate(OmegaConf.load(AUGMENT_DIR / "hms_cine.yaml")).transforms
    options = dict(label_column="label", per_frame_max_norm=True, augment=augment, probe=False)
    floats = cine_datamodule(labels, **options)
    raw = cine_datamodule(labels, normalise_on_device=True, **options)
    floats.setup("fit")
    raw.setup("fit")
    batches, ours = prepared_inputs(raw, split)
    _, expected = prepared_inputs(floats, split)
    assert batches[0]["input"].dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
    peaks = batches[0]["peak"]  # (B, T)
    assert peaks.shape == batches[0]["input"].shape[:2] and peaks.dtype == torch.float32
    assert len(ours) == len(expected) > 0
    assert all(torch.equal(a, b) for a, b in zip(ours, expected, strict=True))


def test_peaks_are_each_frames_maximum_and_1_for_a_black_frame(
    tmp_path: Path, cine_datamodule: Callable[..., VideoDataModule], write_arrays: Callable
) -> None:
    arrays = {f"s{i}": np.full((1, 32, 32), 10 * i, np.uint8) for i in range(10)}  # T = 1
    labels = write_arrays(tmp_path, arrays, {f"s{i}": str(i) for i in range(10)})
    datamodule = cine_datamodule(
        labels, label_column="label", frames=1, per_frame_max_norm=True, normalise_on_device=True
    )
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input"].dtype == torch.uint8 and batch["input"].shape[1:] == (1, 1, 32, 32)
    paths = datamodule.split_rows("train")["path"].iloc[batch["index"].numpy()]
    expected = [max(float(np.load(path).max()), 1.0) for path in paths]
    np.testing.assert_array_equal(batch["peak"][:, 0].numpy(), expected)
    assert 1.0 in expected  # s0, all black, is a training row
