"""open_video / probe_video: what each backend returns and how each failure reads."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from counter_videos import counter_frames, write_video
from hypothesis import given, settings
from hypothesis import strategies as st

from vidlearn.data import video
from vidlearn.data.probe import probe_files
from vidlearn.data.video import DecodeError, check_backend, open_video, probe_video
from vidlearn.errors import ConfigError

BACKENDS = ["decord", "pyav", "torchcodec", "torchcodec_approximate"]
FrameIndices = Callable[[np.ndarray], list[int]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_reports_header_facts(counter_video: Path, backend: str) -> None:
    reader = open_video(counter_video, backend)
    assert (reader.num_frames, reader.fps, reader.height, reader.width) == (40, 10.0, 32, 32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_returns_uint8_rgb_frames_in_requested_order(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    frames = open_video(counter_video, backend).read([5, 2, 2, 7])
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert frame_indices(frames) == [5, 2, 2, 7]


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_after_seek_returns_exact_frames(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    # 21..39 lies past the first second, so PyAV seeks to the keyframe at 16 and counts from there.
    wanted = [21, 22, 30, 39]
    assert frame_indices(open_video(counter_video, backend).read(wanted)) == wanted


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_of_far_apart_frames_returns_exact_frames(
    counter_video: Path, backend: str, frame_indices: FrameIndices
) -> None:
    # 3 and 36 are more than two seconds apart, so PyAV decodes them in two runs with a seek between.
    assert frame_indices(open_video(counter_video, backend).read([36, 3, 4])) == [36, 3, 4]


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_rejects_index_out_of_range(counter_video: Path, backend: str) -> None:
    with pytest.raises(
        DecodeError, match=rf"{counter_video}: frame indices \[40\] are outside \[0, 40\)"
    ):
        open_video(counter_video, backend).read([3, 40])


def test_pyav_repeats_last_decodable_frame_of_truncated_file(
    truncated_video: Path, frame_indices: FrameIndices, caplog: pytest.LogCaptureFixture
) -> None:
    reader = open_video(truncated_video, "pyav")
    with caplog.at_level(logging.WARNING):
        frames = reader.read([57, 58, reader.num_frames - 1])
    assert frame_indices(frames) == [57, 58, 58]
    assert "cannot be decoded" in caplog.text


def test_decord_names_truncated_file_and_suggests_pyav(truncated_video: Path) -> None:
    with pytest.raises(DecodeError, match=rf"{truncated_video}: decord .* use backend=pyav"):
        open_video(truncated_video, "decord").read([59])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing", "file not found"),
        ("empty", "file is empty"),
        ("random_bytes", "((decord|torchcodec) cannot open it|not a readable video)"),
        ("text_as_avi", "((decord|torchcodec) cannot open it|not a readable video)"),
        ("audio_only", "(has no video stream|decord finds no video stream)"),
        ("corrupt_npy", "not a readable NumPy array"),
    ],
)
def test_broken_file_raises_decode_error_naming_it(
    broken_files: dict[str, Path], backend: str, kind: str, reason: str
) -> None:
    path = broken_files[kind]
    with pytest.raises(DecodeError, match=rf"^{path}: {reason}"):
        open_video(path, backend).read([0])


def test_unknown_backend_is_a_config_error(counter_video: Path) -> None:
    with pytest.raises(ValueError, match="use one of auto, decord, pyav, torchcodec"):
        open_video(counter_video, "opencv")


@pytest.mark.skipif(
    importlib.util.find_spec("torchcodec") is not None, reason="torchcodec is installed"
)
def test_torchcodec_missing_says_how_to_install(counter_video: Path) -> None:
    with pytest.raises(ConfigError, match="pip install torchcodec.*apt-get install ffmpeg"):
        open_video(counter_video, "torchcodec")


def test_grayscale_array_gains_channel_axis(tmp_path: Path) -> None:
    path = tmp_path / "gray.npy"
    np.save(path, np.arange(4 * 3 * 2, dtype=np.uint8).reshape(4, 3, 2))
    reader = open_video(path, "decord")
    frames = reader.read([3, 0])
    assert (reader.num_frames, reader.height, reader.width) == (4, 3, 2)
    assert frames.shape == (2, 3, 2, 1) and frames.dtype == np.uint8
    assert frames[1, :, :, 0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_float_array_is_read_as_float32(tmp_path: Path) -> None:
    path = tmp_path / "mri.npy"
    np.save(path, np.full((3, 4, 4, 2), 1234.5, dtype=np.float64))
    frames = open_video(path).read([1])
    assert frames.dtype == np.float32 and frames.shape == (1, 4, 4, 2) and frames.max() == 1234.5


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 5), st.integers(1, 5), st.integers(0, 3)),
    dtype=st.sampled_from(["u1", "<u2", ">f4", "f8", "?"]),
    fortran=st.booleans(),
    data=st.data(),
)
def test_any_frames_of_an_npy_read_as_indexing_the_array(
    tmp_path_factory: pytest.TempPathFactory, shape: tuple, dtype: str, fortran: bool, data
) -> None:
    """Any indices (repeated, reversed, in runs) of any stored array give `array[indices]` as
    (T, H, W, C), uint8 kept and the rest float32 (Fortran order is memory-mapped instead).

    Caught (planted): the second and later runs of consecutive indices read from the first run's
    offset (`wanted[0]` for `wanted[run_start]`)."""
    frames, height, width, views = shape
    array = np.arange(frames * height * width * max(views, 1)) % 251
    array = array.reshape((frames, height, width, views) if views else (frames, height, width))
    array = array.astype(dtype)
    path = tmp_path_factory.mktemp("npy") / "clip.npy"
    np.save(path, np.asfortranarray(array) if fortran else array)
    indices = data.draw(st.lists(st.integers(0, frames - 1), min_size=1, max_size=10))
    reader = open_video(path)
    out = reader.read(indices)
    reader.close()
    expected = (array if views else array[..., None])[indices]
    assert out.dtype == (np.uint8 if dtype == "u1" else np.float32)
    np.testing.assert_array_equal(out, expected.astype(out.dtype))


def test_a_truncated_npy_is_a_decode_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "clip.npy"
    np.save(path, np.zeros((5, 8, 8), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DecodeError, match=rf"{path}: not a readable NumPy array.*truncated"):
        open_video(path)


def test_an_npy_rewritten_in_place_is_read_with_its_new_header(tmp_path: Path) -> None:
    """Headers are parsed once per process: a file rewritten with the same path, size and time
    stamp (a rewrite within the file system's clock tick) is read with the shape it has now.

    Caught (planted): keying the parsed headers by path, size and modification time."""
    path = tmp_path / "clip.npy"
    np.save(path, np.arange(4 * 6, dtype=np.uint8).reshape(4, 6, 1))
    open_video(path).close()
    stamp = path.stat()
    np.save(path, np.arange(4 * 6, dtype=np.uint8).reshape(6, 4, 1))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    reader = open_video(path)
    assert reader.num_frames == 6 and reader.read([5])[0, :, 0, 0].tolist() == [20, 21, 22, 23]


def test_npz_with_one_array_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, anything=np.ones((6, 2, 2), dtype=np.uint8))
    assert open_video(path).read([5]).shape == (1, 2, 2, 1)


def test_npz_with_several_arrays_reads_array_key(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, frames=np.ones((6, 2, 2), dtype=np.uint8), mask=np.zeros((2, 2)))
    assert open_video(path, array_key="frames").num_frames == 6


def test_npz_without_array_key_names_the_stored_arrays(tmp_path: Path) -> None:
    path = tmp_path / "cine.npz"
    np.savez(path, image=np.ones((6, 2, 2)), mask=np.zeros((6, 2, 2)))
    with pytest.raises(
        DecodeError, match=r"holds arrays \['image', 'mask'\] and none is named 'frames'"
    ):
        open_video(path)


def test_array_of_wrong_rank_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((5, 5)))
    with pytest.raises(DecodeError, match=r"array of shape \(5, 5\); expected \(T, H, W\)"):
        open_video(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_video_reports_duration(counter_video: Path, backend: str) -> None:
    info = probe_video(counter_video, backend)
    assert (info.num_frames, info.fps, info.height, info.width, info.duration_s) == (
        40,
        10.0,
        32,
        32,
        4.0,
    )


def test_probe_video_reports_codec_with_pyav(counter_video: Path) -> None:
    assert probe_video(counter_video, "pyav").codec == "h264"


@pytest.fixture
def torch_bridge() -> Iterator[None]:
    """decord's bridge set to torch, as PyTorchVideo's decord decoder sets it; restored after."""
    import decord

    decord.bridge.set_bridge("torch")
    yield
    decord.bridge.set_bridge("native")


@pytest.mark.usefixtures("torch_bridge")
def test_decord_reader_returns_numpy_whatever_the_bridge(
    counter_video: Path, frame_indices: FrameIndices
) -> None:
    frames = open_video(counter_video, "decord").read([3, 1])
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8
    assert frame_indices(frames) == [3, 1]


def test_probe_video_rejects_a_truncated_file_pyav_would_pad(truncated_video: Path) -> None:
    # Reading repeats the last decodable frame; a probe must not pass the file as whole.
    with pytest.raises(
        DecodeError, match="frame 59 of the 60 the container claims cannot be decoded.*truncated"
    ) as error:
        probe_video(truncated_video, "pyav")
    assert str(error.value).startswith(f"{truncated_video}: ")


@pytest.mark.torchcodec
def test_auto_opens_with_torchcodec_the_fastest_at_random_clips(counter_video: Path) -> None:
    # experiments/README.md, bench_decoders: torchcodec 1.1-1.6x decord at random clips on 3 of
    # the 4 kinds of file measured, and one order for every kind (see AUTO_BACKENDS).
    assert isinstance(open_video(counter_video, "auto"), video.TorchCodecReader)


@pytest.mark.torchcodec
def test_auto_probes_every_readable_file_with_torchcodec(counter_copies: list[Path]) -> None:
    found, _ = probe_files([str(path) for path in counter_copies], "auto", timeout=None)
    assert {backend for backend, _ in found.values()} == {"torchcodec"}


def refuse(name: str) -> Callable[..., None]:
    """A reader class stand-in that cannot open any file."""

    def opener(path: str, *args: object) -> None:
        raise DecodeError(f"{path}: {name} cannot open it (a codec it lacks)")

    return opener


def test_auto_falls_back_to_decord_when_torchcodec_cannot_open(
    counter_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "TorchCodecReader", refuse("torchcodec"))
    assert isinstance(open_video(counter_video, "auto"), video.DecordReader)


def test_auto_falls_back_to_pyav_when_torchcodec_and_decord_cannot_open(
    counter_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "TorchCodecReader", refuse("torchcodec"))
    monkeypatch.setattr(video, "DecordReader", refuse("decord"))
    assert isinstance(open_video(counter_video, "auto"), video.PyAVReader)


def test_auto_goes_without_torchcodec_when_it_cannot_load(
    counter_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # as if not installed
    check_backend("auto")  # no ConfigError: torchcodec is an extra
    assert video.auto_backends() == ("decord", "pyav")
    assert isinstance(open_video(counter_video, "auto"), video.DecordReader)


@pytest.mark.torchcodec
def test_auto_backend_names_every_failure(broken_files: dict[str, Path]) -> None:
    path = broken_files["random_bytes"]
    with pytest.raises(
        DecodeError,
        match="not a readable video.*torchcodec cannot open it either.*decord cannot open it either",
    ):
        open_video(path, "auto")


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_pyav_applies_the_display_rotation_as_decord_does(tmp_path: Path, rotation: int) -> None:
    # An asymmetric picture (a white corner, a green one), stored 64 wide x 32 high.
    frames = np.zeros((4, 32, 64, 3), dtype=np.uint8)
    frames[:, :16, :16] = 255
    frames[:, 16:, 48:, 1] = 200
    path = write_video(tmp_path / "turned.mp4", frames, rotate=rotation, pix_fmt="yuv444p")
    pyav, decord_reader = open_video(path, "pyav"), open_video(path, "decord")
    turned = pyav.read([0, 3])
    assert (
        turned.shape[1:3]
        == (pyav.height, pyav.width)
        == (decord_reader.height, decord_reader.width)
    )
    assert np.abs(turned.astype(int) - decord_reader.read([0, 3])).mean() < 2


def test_pyav_read_after_a_read_interrupted_mid_decode_returns_the_frames(
    counter_video: Path,
    frame_indices: Callable[[np.ndarray], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupt (Ctrl-C) inside the decoder ends its generator: the next read must not
    continue the dead decoder and report a corrupt file."""
    real = video.numbered_frames
    interrupted = []

    def interrupted_once(*args: object) -> Iterator:
        for index, frame in real(*args):
            if index == 5 and not interrupted:
                interrupted.append(index)
                raise KeyboardInterrupt
            yield index, frame

    monkeypatch.setattr(video, "numbered_frames", interrupted_once)
    reader = video.PyAVReader(str(counter_video))
    with pytest.raises(KeyboardInterrupt):
        reader.read(range(10))
    assert frame_indices(reader.read(range(10, 14))) == [10, 11, 12, 13]


@pytest.mark.parametrize("rotation", [90, -90, 180])
@pytest.mark.parametrize("backend", ["torchcodec", "torchcodec_approximate"])
def test_torchcodec_applies_the_display_rotation_as_pyav_does(
    tmp_path: Path, rotation: int, backend: str
) -> None:
    frames = np.zeros((4, 32, 64, 3), dtype=np.uint8)  # asymmetric: a white and a green corner
    frames[:, :16, :16] = 255
    frames[:, 16:, 48:, 1] = 200
    path = write_video(tmp_path / "turned.mp4", frames, rotate=rotation, pix_fmt="yuv444p")
    torchcodec, pyav = open_video(path, backend), open_video(path, "pyav")
    turned = torchcodec.read([0, 3])
    assert turned.shape[1:3] == (torchcodec.height, torchcodec.width) == (pyav.height, pyav.width)
    assert np.abs(turned.astype(int) - pyav.read([0, 3])).mean() < 2


@pytest.mark.parametrize("backend", ["torchcodec", "torchcodec_approximate"])
def test_torchcodec_names_a_truncated_file_and_suggests_pyav(
    truncated_video: Path, backend: str
) -> None:
    # Like decord (and unlike PyAV) torchcodec cannot repeat the last decodable frame.
    with pytest.raises(
        DecodeError, match=r"frames up to 59 of 60.*truncated.*backend=pyav"
    ) as error:
        open_video(truncated_video, backend).read([57, 59])
    assert str(error.value).startswith(f"{truncated_video}: ")


ODD_VIDEOS = {  # name: (frames T, height, width, write_video options)
    "one frame": (1, 32, 32, {}),
    "grey ffv1": (6, 32, 32, {"codec": "ffv1", "pix_fmt": "gray"}),
    "10-bit": (6, 32, 32, {"pix_fmt": "yuv420p10le"}),
    "33x17": (6, 17, 33, {"pix_fmt": "yuv444p"}),
    "33x17 turned 90": (6, 17, 33, {"pix_fmt": "yuv444p", "rotate": 90}),
}


@pytest.mark.torchcodec
@pytest.mark.parametrize("backend", ["torchcodec", "torchcodec_approximate"])
@pytest.mark.parametrize("kind", sorted(ODD_VIDEOS))
def test_torchcodec_reads_odd_videos_as_pyav_does(tmp_path: Path, kind: str, backend: str) -> None:
    """One frame, grey, 10-bit, odd sizes, turned with odd sizes: displayed RGB uint8 frames,
    the last frame twice, descending (held for the merged reader)."""
    length, height, width, options = ODD_VIDEOS[kind]
    suffix = ".mkv" if options.get("codec") == "ffv1" else ".mp4"
    path = write_video(tmp_path / f"odd{suffix}", counter_frames(length, height, width), **options)
    reader, reference = open_video(path, backend), open_video(path, "pyav")
    indices = [length - 1, 0, length - 1]
    frames = reader.read(indices)
    assert reader.num_frames == length and frames.dtype == np.uint8
    assert frames.shape == (3, reference.height, reference.width, 3)
    assert frames.shape[1:3] == (reader.height, reader.width)
    assert np.abs(frames.astype(int) - reference.read(indices)).mean() < 1


@pytest.mark.torchcodec
def test_auto_states_a_reason_two_backends_share_once(broken_files: dict[str, Path]) -> None:
    """Failed before the fix: torchcodec's "has no video stream" came again after PyAV's own."""
    path = broken_files["audio_only"]
    with pytest.raises(DecodeError) as error:
        open_video(path, "auto")
    assert str(error.value).count("has no video stream") == 1
    assert "decord cannot open it either: decord finds no video stream" in str(error.value)


def test_auto_tries_a_torchcodec_that_cannot_load_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Installed torchcodec whose FFmpeg libraries fail to load raises at import, and Python
    keeps no trace of a failed import: each open_video("auto") retried it (seconds of dlopen
    attempts per file) until the failure was remembered."""
    monkeypatch.setattr(video, "_LOAD_FAILURES", {}, raising=False)  # this test's process state
    attempts = []
    real_import = importlib.import_module

    def failing_torchcodec(name: str, package: str | None = None) -> object:
        if name == "torchcodec.decoders":
            attempts.append(name)
            raise RuntimeError("Could not load libtorchcodec (no FFmpeg libraries)")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", failing_torchcodec)
    assert video.auto_backends() == ("decord", "pyav")
    assert video.auto_backends() == ("decord", "pyav")
    with pytest.raises(ConfigError, match="data.backend=torchcodec.*Could not load"):
        check_backend("torchcodec")
    assert attempts == ["torchcodec.decoders"]
