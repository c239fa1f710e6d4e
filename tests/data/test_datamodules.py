"""VideoDataModule / ImageDataModule: splits, classes, validation and multi-worker loading."""

import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from vidlearn.data import datasets, frame_cache
from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.datamodules import (
    MAX_DECODER_THREADS,
    ImageDataModule,
    VideoDataModule,
    decoder_threads_for,
)
from vidlearn.data.manifest import ManifestError
from vidlearn.data.sample_keys import SampleKey
from vidlearn.data.samplers import BalancedSampler
from vidlearn.errors import ConfigError
from vidlearn.tasks.regression import RegressionTask


def video_datamodule(manifest: Path, **options: object) -> VideoDataModule:
    settings = dict(
        label_kind="multiclass",
        manifest=str(manifest),
        frames=4,
        size=32,
        batch_size=4,
        train_clip_sampler=RandomClipSampler(4),
        eval_clip_sampler=CenterClipSampler(4),
        num_workers=0,
    )
    return VideoDataModule(**{**settings, **options})


def augment_preset(name: str) -> list:
    """The transforms of conf/augment/<name>.yaml."""
    conf = Path(__file__).resolve().parents[2] / "conf" / "augment" / f"{name}.yaml"
    return instantiate(OmegaConf.load(conf)).transforms


def train_inputs(datamodule: VideoDataModule, epoch: int) -> list[torch.Tensor]:
    """Every training batch's `input` of one epoch, in order."""
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [batch["input"] for batch in loader]


def rewrite(manifest: Path, folder: Path, change: callable) -> Path:
    """A copy of `manifest` in the same folder (so paths still resolve), changed by `change`."""
    table = change(pd.read_csv(manifest))
    target = manifest.parent / f"{folder.name}.csv"
    table.to_csv(target, index=False)
    return target


@pytest.mark.parametrize("backend", ["decord", "pyav", "torchcodec"])
def test_two_workers_load_every_clip_with_each_backend(demo_videos: Path, backend: str) -> None:
    datamodule = video_datamodule(demo_videos, backend=backend, num_workers=2)
    datamodule.setup("fit")
    indices = []
    for batch in datamodule.val_dataloader():
        assert batch["input"].shape[1:] == (4, 3, 32, 32) and batch["input"].dtype == torch.float32
        indices += batch["index"].tolist()
    assert sorted(indices) == list(range(len(datamodule.datasets["val"])))


def test_training_batches_are_balanced_draws_of_b_t_c_h_w(demo_videos: Path) -> None:
    datamodule = video_datamodule(demo_videos, sampler=partial(BalancedSampler, seed=0))
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input"].shape == (4, 4, 3, 32, 32)
    assert batch["target"].dtype == torch.int64 and batch["skipped"] == []


def test_split_column_is_respected(demo_videos: Path) -> None:
    datamodule = video_datamodule(demo_videos)
    datamodule.setup("fit")
    expected = pd.read_csv(demo_videos)["split"].value_counts().to_dict()
    assert {split: len(dataset) for split, dataset in datamodule.datasets.items()} == expected


def test_generated_split_keeps_groups_apart(demo_videos: Path, tmp_path: Path) -> None:
    manifest = rewrite(demo_videos, tmp_path, lambda table: table.drop(columns="split"))
    datamodule = video_datamodule(
        manifest, group_column="group", val_fraction=0.2, test_fraction=0.2
    )
    datamodule.setup("fit")
    splits_per_group = datamodule.table.groupby("group")["split"].nunique()
    assert (splits_per_group == 1).all()
    assert set(datamodule.table["split"]) == {"train", "val", "test"}


def test_classes_come_sorted_from_the_train_split(demo_videos: Path) -> None:
    datamodule = video_datamodule(demo_videos)
    datamodule.setup("fit")
    assert (
        datamodule.classes == ["anticlockwise", "clockwise", "erratic"]
        and datamodule.num_outputs == 3
    )


def test_label_only_in_val_is_reported_with_its_line(demo_videos: Path, tmp_path: Path) -> None:
    def relabel_first_val_row(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[table.index[table["split"] == "val"][0], "label"] = "spiral"
        return table

    manifest = rewrite(demo_videos, tmp_path, relabel_first_val_row)
    line = int(np.flatnonzero(pd.read_csv(manifest)["label"] == "spiral")[0]) + 2
    with pytest.raises(ManifestError, match=rf"(?s){line}\s+label\s+label 'spiral' is not one of"):
        video_datamodule(manifest).setup("fit")


def test_unknown_split_value_is_reported(demo_videos: Path, tmp_path: Path) -> None:
    manifest = rewrite(demo_videos, tmp_path, lambda table: table.assign(split="training"))
    with pytest.raises(ManifestError, match="split 'training' is not one of"):
        video_datamodule(manifest).setup("fit")


def test_empty_test_split_is_explained_when_asked_for(demo_videos: Path, tmp_path: Path) -> None:
    manifest = rewrite(demo_videos, tmp_path, lambda table: table[table["split"] != "test"])
    datamodule = video_datamodule(manifest)
    datamodule.setup("fit")
    with pytest.raises(ManifestError, match="the test split has no rows"):
        datamodule.test_dataloader()


def test_image_batches_are_b_c_h_w_after_filtering(demo_images: Path) -> None:
    datamodule = ImageDataModule(
        label_kind="multiclass",
        manifest=str(demo_images),
        size=40,
        batch_size=5,
        label_column="primary_posture",
        filter="num_people == 1",
        num_workers=0,
    )
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["input"].shape == (5, 3, 40, 40)
    assert (datamodule.table["num_people"].astype(int) == 1).all() and len(
        datamodule.rows.dropped
    ) > 0


def test_frame_cache_folder_fills_one_entry_per_video_read(
    demo_videos: Path, tmp_path: Path
) -> None:
    datamodule = video_datamodule(demo_videos, frame_cache=str(tmp_path / "frames"))
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["input"].shape[1:] == (4, 3, 32, 32)
    assert len(list((tmp_path / "frames").glob("*.frames"))) == len(batch["index"])


def test_frame_cache_turns_the_loader_timeout_into_a_stall_limit_on_cache_writes(
    demo_videos: Path, tmp_path: Path
) -> None:
    datamodule = video_datamodule(
        demo_videos, frame_cache=str(tmp_path / "frames"), num_workers=1, timeout=7.0
    )
    datamodule.setup("fit")
    assert datamodule.train_dataloader().timeout == 0
    assert datamodule.frame_cache.stall_s == 7.0


def test_a_read_only_frame_cache_keeps_the_loader_timeout(
    demo_videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Misses in a read-only cache are decoded without a cache write, so without its stall
    limit: the loader's own timeout must stay on, or a hung decoder hangs the run for ever."""
    folder = tmp_path / "frames"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: real_access(path, mode) and path != folder)
    datamodule = video_datamodule(demo_videos, frame_cache=str(folder), num_workers=1, timeout=7.0)
    datamodule.setup("fit")
    assert datamodule.frame_cache.read_only
    assert datamodule.train_dataloader().timeout == 7.0


def test_training_batches_are_identical_with_0_and_2_workers(demo_videos: Path) -> None:
    inputs = {}
    for workers in (0, 2):
        datamodule = video_datamodule(
            demo_videos, augment=augment_preset("strong"), num_workers=workers
        )
        datamodule.setup("fit")
        inputs[workers] = train_inputs(datamodule, epoch=1)
    assert len(inputs[0]) == len(inputs[2]) > 1
    assert all(torch.equal(a, b) for a, b in zip(inputs[0], inputs[2], strict=True))


def test_an_item_depends_on_its_key_alone(demo_videos: Path) -> None:
    datamodule = video_datamodule(demo_videos, augment=augment_preset("strong"))
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    first, again, later = (
        dataset[SampleKey(index=3, seed=0, epoch=0, position=position)]["input"]
        for position in (0, 0, 1)
    )
    assert torch.equal(first, again) and not torch.equal(first, later)


def test_normalise_on_device_gives_uint8_batches_and_their_normalisation(
    demo_videos: Path,
) -> None:
    datamodule = video_datamodule(demo_videos, normalise_on_device=True)
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["input"].dtype == torch.uint8 and batch["input"].shape[1:] == (4, 3, 32, 32)
    reference = video_datamodule(demo_videos)
    reference.setup("fit")
    expected = next(iter(reference.val_dataloader()))["input"]
    assert torch.equal(datamodule.batch_normalisation()(batch["input"]), expected)


@pytest.mark.parametrize(
    ("workers", "cores", "threads"), [(0, 2, 2), (2, 2, 1), (1, 8, 8), (3, 8, 2), (16, 2, 1)]
)
def test_decoder_threads_share_the_cores_among_the_decoding_processes(
    workers: int, cores: int, threads: int
) -> None:
    assert decoder_threads_for(workers, None, cores) == threads


def test_decoder_threads_set_in_the_config_win_over_the_cores() -> None:
    assert decoder_threads_for(2, 3, cores=2) == 3


def test_decoder_threads_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.decoder_threads=0"):
        decoder_threads_for(2, 0)


@settings(max_examples=20)
@given(
    requested=st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=MAX_DECODER_THREADS + 1),
        st.floats(allow_nan=True).filter(lambda value: not float(value).is_integer()),
        st.booleans(),
        st.text(max_size=3),
    )
)
def test_decoder_threads_that_are_not_a_sane_thread_count_are_a_config_error(
    requested: object,
) -> None:
    """Any value but an int in [1, MAX_DECODER_THREADS] (floats, bools, text, 0, -5, 10**9) is a
    ConfigError naming data.decoder_threads. Caught the merged code: 2.5 and True passed through
    to the decoders, "x" raised a bare TypeError and 10**9 asked FFmpeg for a billion threads."""
    with pytest.raises(ConfigError, match="data.decoder_threads="):
        decoder_threads_for(2, requested)


def test_video_readers_open_with_the_decoder_threads(
    demo_videos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened, real_open = [], datasets.open_video

    def recording_open(path: str, backend: str, threads: int) -> object:
        opened.append(threads)
        return real_open(path, backend=backend, threads=threads)

    monkeypatch.setattr(datasets, "open_video", recording_open)
    datamodule = video_datamodule(demo_videos, backend="pyav", decoder_threads=3)
    datamodule.setup("fit")
    next(iter(datamodule.train_dataloader()))
    assert opened and set(opened) == {3}


def test_frame_cache_fills_its_entries_with_the_decoder_threads(
    demo_videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before the fix: a cache miss decoded with 1 thread whatever data.decoder_threads."""
    opened, real_open = [], frame_cache.open_video

    def recording_open(path: str, backend: str, threads: int = 1) -> object:
        opened.append(threads)
        return real_open(path, backend, threads)

    monkeypatch.setattr(frame_cache, "open_video", recording_open)
    datamodule = video_datamodule(
        demo_videos, backend="pyav", decoder_threads=3, frame_cache=str(tmp_path / "frames")
    )
    datamodule.setup("fit")
    next(iter(datamodule.train_dataloader()))
    assert opened and set(opened) == {3}


def test_frame_cache_with_per_frame_max_norm_is_a_config_error_naming_both_keys(
    demo_videos: Path, tmp_path: Path
) -> None:
    """The cache holds resized frames, whose peaks are lower than the decoded frames' that
    per-frame max normalisation divides by (and evaluation without the cache would use).
    Before the fix the cached clips were silently normalised by the resized frames' peaks."""
    with pytest.raises(ConfigError, match="data.frame_cache.*data.per_frame_max_norm"):
        video_datamodule(demo_videos, frame_cache=str(tmp_path / "frames"), per_frame_max_norm=True)


def test_workers_hand_uint8_clips_that_the_main_process_normalises(demo_videos: Path) -> None:
    """Float32 batches cost their workers 4x the shared memory of uint8 ones (issue 23): with
    workers, clips cross as uint8 and come out of the loader normalised, as with 0 workers."""
    batches = {}
    for workers in (0, 2):
        datamodule = video_datamodule(demo_videos, num_workers=workers, pin_memory=False)
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        item = loader.dataset[SampleKey(index=0, seed=0, epoch=1, position=0)]
        assert item["input"].dtype == (torch.float32 if workers == 0 else torch.uint8)
        assert datamodule.datasets["train"][0]["input"].dtype == torch.float32  # for preflight
        batches[workers] = train_inputs(datamodule, epoch=1)
    assert all(batch.dtype == torch.float32 for batch in batches[2])
    assert all(torch.equal(a, b) for a, b in zip(batches[0], batches[2], strict=True))


def test_max_normalised_clips_cross_as_uint8_with_their_peaks(demo_videos: Path) -> None:
    datamodule = video_datamodule(
        demo_videos, num_workers=2, pin_memory=False, per_frame_max_norm=True
    )
    datamodule.setup("fit")
    loader = datamodule.val_dataloader()
    assert loader.dataset[0]["input"].dtype == torch.uint8 and "peak" in loader.dataset[0]
    batch = next(iter(loader))
    assert batch["input"].dtype == torch.float32 and "peak" not in batch
    reference = video_datamodule(demo_videos, per_frame_max_norm=True)
    reference.setup("fit")
    assert torch.equal(batch["input"], next(iter(reference.val_dataloader()))["input"])


def write_mixed_arrays(folder: Path) -> Path:
    """m.csv of 8 (4, 8, 8) frame arrays: uint8 and float in [0, 1] alternating, two classes."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        frames = rng.integers(0, 256, (4, 8, 8), dtype=np.uint8)
        np.save(folder / f"c{i}.npy", frames if i % 2 else (frames / 255).astype(np.float32))
        rows.append({"path": f"c{i}.npy", "label": "ab"[i // 2 % 2]})
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    return folder / "m.csv"


def model_inputs(datamodule: VideoDataModule) -> list[torch.Tensor]:
    """Every batch's `input` of the train (epoch 0) and val loaders as the task's model gets it
    (normalised on the device when the DataModule says so)."""
    task = RegressionTask(torch.nn.Identity(), normalise=datamodule.batch_normalisation())
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(0)
    batches = [(batch, True) for batch in loader]
    batches += [(batch, False) for batch in datamodule.val_dataloader()]
    return [task.prepare_batch(batch, training)["input"] for batch, training in batches]


@pytest.mark.parametrize(
    ("workers", "on_device"), [(1, False), (0, True), (1, True)], ids=["workers", "device", "both"]
)
def test_a_batch_of_uint8_and_float_arrays_gives_the_0_worker_model_inputs(
    tmp_path: Path, workers: int, on_device: bool
) -> None:
    """uint8 and float [0, 1] frame arrays in one batch, each clip handed over in its own dtype:
    collate cast the uint8 clips into a float batch, normalised as [0, 1] floats (255x too
    large), or refused the float clips in a uint8 batch ('torch.cat(): input types can't be cast
    to the desired output type Byte'); 0 workers normalise each clip. Such a batch is normalised
    item by item in the worker."""
    manifest = write_mixed_arrays(tmp_path)
    options = dict(size=8, pin_memory=False, mean=[0.5], std=[0.2])
    expected = video_datamodule(manifest, **options)
    expected.setup("fit")
    ours = video_datamodule(manifest, num_workers=workers, normalise_on_device=on_device, **options)
    ours.setup("fit")
    pairs = zip(model_inputs(expected), model_inputs(ours), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


HANDOVER_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}


def write_typed_arrays(folder: Path, channels: int, dtypes: list[str]) -> Path:
    """m.csv of 12 (5, 10, 12[, C]) arrays, their dtypes cycling through `dtypes` (uint16 up to
    4000, float in [0, 1]); 6 train, 3 val, 3 test rows."""
    folder.mkdir()
    rng = np.random.default_rng(len(dtypes))
    rows = []
    for i in range(12):
        dtype = dtypes[i % len(dtypes)]
        frames = rng.random((5, 10, 12) if channels == 0 else (5, 10, 12, channels))
        scale = {"uint8": 250, "uint16": 4000, "float32": 1}[dtype]
        np.save(folder / f"c{i}.npy", (frames * scale).astype(HANDOVER_DTYPES[dtype]))
        split = "train" if i < 6 else "val" if i < 9 else "test"
        rows.append({"path": f"c{i}.npy", "label": i % 2, "split": split})
    pd.DataFrame(rows).to_csv(folder / "m.csv", index=False)
    return folder / "m.csv"


@pytest.mark.slow
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(  # peaks handed over to the main process
    channels=0, dtypes=["uint8"], max_norm=True, augment="none", on_device=False, cache=False
)
@example(  # uint8 and float clips in one batch, normalised on the device
    channels=2,
    dtypes=["float32", "uint8"],
    max_norm=False,
    augment="light",
    on_device=True,
    cache=False,
)
@given(
    channels=st.sampled_from([0, 2, 3]),
    dtypes=st.lists(st.sampled_from(sorted(HANDOVER_DTYPES)), min_size=1, max_size=2, unique=True),
    max_norm=st.booleans(),
    augment=st.sampled_from(["none", "hms_cine", "light"]),
    on_device=st.booleans(),
    cache=st.booleans(),
)
def test_a_worker_gives_the_model_inputs_of_0_workers(
    tmp_path_factory: pytest.TempPathFactory,
    channels: int,
    dtypes: list[str],
    max_norm: bool,
    augment: str,
    on_device: bool,
    cache: bool,
) -> None:
    """Any channel count, dtypes (mixed in one batch too), per-frame max normalisation,
    augmentation, device normalisation and frame cache: a ConfigError for both or the same
    inputs. Planted bug caught: the loader collating without HandOverCollate (mixed uint8 and
    float arrays cast into one float batch, or refused); the main process normalising without
    the batch's peaks."""
    folder = tmp_path_factory.mktemp("arrays")
    manifest = write_typed_arrays(folder / "data", channels, dtypes)
    width = max(channels, 1)
    options = dict(
        size=8,
        frames=3,
        batch_size=3,
        mean=[0.4] * width,
        std=[0.3] * width,
        per_frame_max_norm=max_norm,
        augment=augment_preset(augment),
        normalise_on_device=on_device,
        pin_memory=False,
        probe=False,
    )
    inputs = []
    for workers in (0, 1):
        frame_cache = {"frame_cache": str(folder / f"cache{workers}")} if cache else {}
        try:
            datamodule = video_datamodule(manifest, num_workers=workers, **options, **frame_cache)
            datamodule.setup("fit")
        except ConfigError as error:
            inputs.append(type(error))
            continue
        inputs.append(model_inputs(datamodule))
    if inputs[0] is ConfigError or inputs[1] is ConfigError:
        assert inputs[0] is inputs[1]
        return
    assert len(inputs[0]) == len(inputs[1])
    assert all(torch.equal(a, b) for a, b in zip(*inputs, strict=True))
