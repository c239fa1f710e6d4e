"""Probing at setup: every row's file is checked once, unusable rows are dropped and listed, and
data.backend=auto picks a backend per file."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from vidlearn.data import probe
from vidlearn.data.bad_files import TooManyBadFilesError
from vidlearn.data.clip_sampling import CenterClipSampler, RandomClipSampler
from vidlearn.data.datamodules import ImageDataModule, VideoDataModule, write_splits
from vidlearn.data.probe import probe_files, probe_rows
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.video import VideoInfo
from vidlearn.errors import ConfigError

# The probe set's files fall back from decord to PyAV; torchcodec, auto's first choice, reads
# them all (tests/data/test_video.py tests that choice).
pytestmark = pytest.mark.usefixtures("decord_then_pyav")


def probed_datamodule(manifest: Path, **options: object) -> VideoDataModule:
    """A set-up VideoDataModule of 4-frame clips with backend=auto that tolerates bad files."""
    settings = dict(
        label_kind="multiclass",
        manifest=str(manifest),
        frames=4,
        size=32,
        backend="auto",
        train_clip_sampler=RandomClipSampler(4),
        eval_clip_sampler=CenterClipSampler(4),
        num_workers=0,
        max_bad_fraction=0.5,
    )
    datamodule = VideoDataModule(**{**settings, **options})
    datamodule.setup("fit")
    return datamodule


def test_unusable_row_is_dropped_and_listed_with_line_reason_and_stage(probe_set: Path) -> None:
    datamodule = probed_datamodule(probe_set)
    skipped = datamodule.probe_skipped
    assert skipped[["path", "line", "split", "stage"]].values.tolist() == [
        [str(probe_set.parent / "empty.mp4"), 12, "train", "probe"]
    ]
    assert skipped["reason"].iloc[0] == "file is empty (0 bytes); re-export it or remove its row"
    assert str(probe_set.parent / "empty.mp4") not in datamodule.datasets["train"].paths


def test_auto_reads_a_file_decord_cannot_copy_with_pyav(probe_set: Path) -> None:
    datamodule = probed_datamodule(probe_set)
    train = datamodule.datasets["train"]
    chosen = dict(zip(train.paths, train.backends, strict=True))
    wide = str(probe_set.parent / "wide_48.mp4")
    assert chosen.pop(wide) == "pyav" and set(chosen.values()) == {"decord"}
    assert datamodule.probe_report.backends == {"decord": 9, "pyav": 1}
    assert train[train.paths.index(wide)]["skipped"] == []  # read by PyAV, not substituted


def test_splits_csv_names_the_backend_of_each_file(probe_set: Path, tmp_path: Path) -> None:
    written = pd.read_csv(write_splits(probed_datamodule(probe_set), tmp_path))
    names = written["path"].map(lambda path: Path(path).name)
    chosen = dict(zip(names, written["backend"], strict=True))
    assert chosen["wide_48.mp4"] == "pyav" and chosen["clip_0.mp4"] == "decord"


def test_video_shorter_than_a_skip_sampler_clip_is_dropped_at_probe(probe_set: Path) -> None:
    datamodule = probed_datamodule(
        probe_set, eval_clip_sampler=CenterClipSampler(6, short_video="skip")
    )
    short = datamodule.probe_skipped.set_index("path").loc[
        str(probe_set.parent / "three_frames.mp4")
    ]
    assert short["split"] == "val" and short["reason"].startswith("3 frames, but a clip spans 6")


def test_video_shorter_than_a_looping_clip_is_kept(probe_set: Path) -> None:
    datamodule = probed_datamodule(probe_set, eval_clip_sampler=CenterClipSampler(6))
    assert str(probe_set.parent / "three_frames.mp4") in datamodule.datasets["val"].paths


def test_a_second_setup_reads_every_outcome_from_the_probe_index(
    probe_set: Path, tmp_path: Path
) -> None:
    index = str(tmp_path / "probes.sqlite")
    first = probed_datamodule(probe_set, probe_index=index).probe_report
    second = probed_datamodule(probe_set, probe_index=index).probe_report
    assert first.probed == 13  # 11 files with decord, then the two it cannot read with PyAV
    assert second.probed == 0
    assert second.skipped.equals(first.skipped) and second.table.equals(first.table)


def test_probe_false_keeps_every_row(probe_set: Path) -> None:
    datamodule = probed_datamodule(probe_set, probe=False)
    assert len(datamodule.table) == 11 and datamodule.probe_skipped.empty


def test_a_bad_file_does_not_change_a_seeded_split(probe_set: Path, tmp_path: Path) -> None:
    table = pd.read_csv(probe_set).drop(columns="split")
    table["path"] = [str(probe_set.parent / path) for path in table["path"]]
    manifest = tmp_path / "unsplit.csv"
    table.to_csv(manifest, index=False)
    options = dict(split_column=None, val_fraction=0.3, test_fraction=0.0, allow_outside_root=True)
    probed = probed_datamodule(manifest, **options).table.set_index("path")["split"]
    unprobed = probed_datamodule(manifest, probe=False, **options).table.set_index("path")["split"]
    assert probed.to_dict() == unprobed.drop(str(probe_set.parent / "empty.mp4")).to_dict()


def test_too_many_unusable_files_stop_setup_listing_them(probe_set: Path) -> None:
    with pytest.raises(
        TooManyBadFilesError, match=r"1 of 8 train files could not be read"
    ) as error:
        probed_datamodule(probe_set, max_bad_fraction=0.01)
    assert str(probe_set.parent / "empty.mp4") in str(error.value)


def test_probing_in_a_process_pool_matches_probing_in_process(
    probe_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [str(path) for path in sorted(probe_set.parent.glob("*.mp4"))]
    alone, _ = probe_files(paths, "auto")
    monkeypatch.setattr(probe, "PARALLEL_MIN_FILES", 1)
    pooled, _ = probe_files(paths, "auto", workers=2)
    assert pooled == alone


def _probe_count(paths: list[str], index: str, counts: multiprocessing.Queue) -> None:
    counts.put(probe_files(paths, "auto", ProbeCache(index))[1])


def test_two_ranks_probing_at_once_probe_each_file_once(probe_set: Path, tmp_path: Path) -> None:
    # As two DDP ranks would: the lock lets one probe while the other waits, then reads.
    paths = [str(path) for path in sorted(probe_set.parent.glob("*.mp4"))]
    context = multiprocessing.get_context("fork")
    counts = context.Queue()
    ranks = [
        context.Process(target=_probe_count, args=(paths, str(tmp_path / "probes.sqlite"), counts))
        for _ in range(2)
    ]
    for rank in ranks:
        rank.start()
    for rank in ranks:
        rank.join(timeout=60)
    assert sorted(counts.get(timeout=5) for _ in ranks) == [0, len(paths) + 2]


def test_probing_does_not_change_what_training_draws(demo_videos: Path) -> None:
    """Caught (planted): the probe handing back its kept rows in another order."""
    batches = [
        next(iter(probed_datamodule(demo_videos, probe=probe).train_dataloader()))
        for probe in (True, False)
    ]
    assert torch.equal(batches[0]["input"], batches[1]["input"])
    assert torch.equal(batches[0]["target"], batches[1]["target"])


def test_unreadable_image_is_dropped_at_probe(tmp_path: Path) -> None:
    rows = []
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,{'ab'[i % 2]},train")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "images.csv").write_text(
        "path,label,split\n" + "\n".join(rows) + "\nbroken.png,a,train\n"
    )
    datamodule = ImageDataModule(
        label_kind="multiclass",
        manifest=str(tmp_path / "images.csv"),
        num_workers=0,
        max_bad_fraction=0.5,
    )
    datamodule.setup("fit")
    assert datamodule.probe_skipped["path"].tolist() == [str(tmp_path / "broken.png")]
    assert datamodule.probe_skipped["reason"].iloc[0].startswith("not a readable image")
    assert len(datamodule.datasets["train"]) == 4


def test_a_backend_that_cannot_load_is_one_config_error_never_cached(
    probe_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as if not installed
    index = tmp_path / "probes.sqlite"
    with pytest.raises(ConfigError, match=r"data.backend=torchcodec.*pip install torchcodec"):
        probed_datamodule(probe_set, backend="torchcodec", probe_index=str(index))
    paths = [str(path) for path in probe_set.parent.glob("*.mp4")]
    assert ProbeCache(index).lookup(paths, "torchcodec") == {}


def test_without_probing_a_backend_that_cannot_load_stops_setup(
    probe_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    with pytest.raises(ConfigError, match=r"data.backend=torchcodec"):
        probed_datamodule(probe_set, backend="torchcodec", probe=False)


def _rows(manifest: Path) -> pd.DataFrame:
    table = pd.read_csv(manifest)
    table["path"] = [str(manifest.parent / path) for path in table["path"]]
    table["line"] = range(2, len(table) + 2)
    return table


def _stand_in_decoder(name: str, fault: str) -> Callable[..., VideoInfo]:
    """probe_video, except on the file called `name`: it hangs (holding the GIL, as decord is
    reported to) or kills its process (as a decoder crash or the OOM killer would)."""
    real = probe.probe_video

    def probe_video(path: str, backend: str = "decord") -> VideoInfo:
        if Path(path).name == name and fault == "hang":
            time.sleep(30)
        if Path(path).name == name and fault == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, backend)

    return probe_video


def test_a_file_that_hangs_its_decoder_is_skipped_after_the_probe_timeout(
    probe_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe, "probe_video", _stand_in_decoder("clip_1.mp4", "hang"))
    index = ProbeCache(tmp_path / "probes.sqlite")
    start = time.perf_counter()
    report = probe_rows(_rows(probe_set), "pyav", index=index, timeout=1)
    assert time.perf_counter() - start < 10  # not the 30 s the decoder hangs for
    hung = str(probe_set.parent / "clip_1.mp4")
    reasons = report.skipped.set_index("path")["reason"]
    assert reasons[hung].startswith("decoding did not finish in 1 s")
    assert len(report.table) == 9  # every other readable file is kept (the empty one is not)
    assert index.lookup([hung], "pyav") == {}  # not remembered: a later run tries it again
    assert multiprocessing.active_children() == []  # the hung process was killed


def test_a_file_that_crashes_its_decoder_is_skipped(
    probe_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe, "probe_video", _stand_in_decoder("clip_2.mp4", "crash"))
    report = probe_rows(_rows(probe_set), "pyav", timeout=60)
    reasons = report.skipped.set_index("path")["reason"]
    assert reasons[str(probe_set.parent / "clip_2.mp4")].startswith(
        "decoding crashed its process (SIGKILL)"
    )
    assert len(report.table) == 9


def test_splits_csv_lists_the_rows_the_probe_dropped_with_their_split_and_reason(
    probe_set: Path, tmp_path: Path
) -> None:
    datamodule = probed_datamodule(
        probe_set, eval_clip_sampler=CenterClipSampler(6, short_video="skip")
    )
    written = pd.read_csv(write_splits(datamodule, tmp_path), keep_default_na=False)
    rows = written.set_index(written["path"].map(lambda path: Path(path).name))
    assert len(written) == len(pd.read_csv(probe_set))
    short = rows.loc["three_frames.mp4"]
    assert short["split"] == "val" and short["skipped"].startswith("3 frames, but a clip spans 6")
    assert short["label"] != "" and rows.loc["clip_0.mp4", "skipped"] == ""
