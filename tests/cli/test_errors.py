"""A user's mistake ends the console script with one clean block and exit code 2.

Each test runs `vidlearn-train` (or another script) with a user's arguments and checks the exit
code, that no traceback and no Hydra "Error executing job" header is printed, and that the message
names the file, row or config key to fix. Most run the script's `main()` in this process (the
`console_script` fixture, tests/conftest.py); the tests marked "real script" start the installed
console script itself, as a user does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ScriptRun
from omegaconf import DictConfig

from vidlearn.cli.console import console_main

BIN = Path(sys.executable).parent
RunScript = Callable[..., ScriptRun]


@pytest.fixture
def run_script(console_script: RunScript, tmp_path: Path) -> RunScript:
    """`run_script(*args, script="vidlearn-train", **env)`: the script run in-process in
    `tmp_path`, its outputs kept there; returns its exit code and output."""

    def run(*args: str, script: str = "vidlearn-train", **env: str) -> ScriptRun:
        return console_script(
            script, f"hydra.run.dir={tmp_path / 'run'}", *args, cwd=tmp_path, **env
        )

    return run


def run_real_script(tmp_path: Path, *args: str, script: str = "vidlearn-train", **env: str):
    """Start the installed console script in `tmp_path` with outputs kept there; returns the
    finished process."""
    return subprocess.run(
        [str(BIN / script), f"hydra.run.dir={tmp_path / 'run'}", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


def assert_clean_user_error(
    result: subprocess.CompletedProcess | ScriptRun, *expected: str
) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "Error executing job" not in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr[-3000:]


def test_manifest_rows_with_problems_are_listed_with_their_lines(
    run_script: RunScript, tmp_path: Path, demo_videos: Path
) -> None:
    manifest = tmp_path / "clips.csv"
    first = next(demo_videos.parent.glob("videos/*.mp4"))
    manifest.write_text(f"path,label\n{first},clockwise\nmissing.mp4,erratic\n")
    result = run_script(f"data.manifest={manifest}", "data.allow_outside_root=true")
    assert_clean_user_error(result, str(manifest), "3", "file not found", "missing.mp4")


def test_missing_manifest_names_the_file_and_the_key(tmp_path: Path) -> None:
    """Real script: the installed vidlearn-train ends a first-run mistake cleanly."""
    result = run_real_script(tmp_path, f"data.manifest={tmp_path / 'nope.csv'}")
    assert_clean_user_error(result, "nope.csv", "data.manifest")


def test_unknown_label_column_names_the_columns_and_the_key(
    run_script: RunScript, demo_videos: Path
) -> None:
    result = run_script(f"data.manifest={demo_videos}", "data.label_column=posture")
    assert_clean_user_error(result, "['posture']", "data.label_column")


def test_missing_data_folder_names_the_folder(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script("data=video_folder", f"data.folder={tmp_path / 'clips'}")
    assert_clean_user_error(result, str(tmp_path / "clips"), "data.folder")


def test_folder_with_one_class_is_refused(
    run_script: RunScript, tmp_path: Path, demo_videos: Path
) -> None:
    only = tmp_path / "clips" / "clockwise"
    only.mkdir(parents=True)
    for video in sorted(demo_videos.parent.glob("videos/clockwise_*.mp4"))[:4]:
        (only / video.name).symlink_to(video)
    result = run_script("data=video_folder", f"data.folder={tmp_path / 'clips'}")
    assert_clean_user_error(result, "at least 2 classes", "clockwise")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.size=-5", "data.size=-5"),
        ("data.frames=0", "data.frames=0"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5"),
        ("data.max_bad_fraction=2", "data.max_bad_fraction=2"),
        ("data.batch_size=abc", "data.batch_size='abc'"),
    ],
)
def test_invalid_config_value_names_the_key(run_script: RunScript, override: str, key: str) -> None:
    assert_clean_user_error(run_script(override), key)


@pytest.mark.parametrize(
    ("override", "named"),
    [("model=frame_gur", "model/frame_gur"), ("data.bacth_size=3", "data.bacth_size")],
)
def test_unknown_choice_or_key_exits_2(run_script: RunScript, override: str, named: str) -> None:
    assert_clean_user_error(run_script(override), named)


def test_missing_resume_checkpoint_names_the_key(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script(f"resume={tmp_path / 'old_run'}")
    assert_clean_user_error(result, "resume=", "last.ckpt")


def test_too_many_unreadable_files_are_listed(
    run_script: RunScript, tmp_path: Path, demo_videos: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    rows = [
        f"{video},{video.stem.split('_')[0]}"
        for video in sorted(demo_videos.parent.glob("videos/*.mp4"))
    ]
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\n" + "\n".join([*rows, f"{broken},clockwise"]) + "\n")
    result = run_script(f"data.manifest={manifest}", "data.allow_outside_root=true")
    assert_clean_user_error(result, "broken.mp4", "data.max_bad_fraction")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["model=s3d", "model.weights=none", "data.frames=4"], "data.frames >= 6"),
        (["model=hms_cnn_rnn", "model.num_frames=25", "data.frames=8"], "data.frames"),
    ],
)
def test_model_that_cannot_take_the_clips_is_refused_before_training(
    run_script: RunScript, tmp_path: Path, demo_videos: Path, overrides: list[str], named: str
) -> None:
    result = run_script(f"data.manifest={demo_videos}", *overrides)
    assert_clean_user_error(result, named)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_weights_file_names_the_key(
    run_script: RunScript, tmp_path: Path, demo_videos: Path
) -> None:
    result = run_script(
        f"data.manifest={demo_videos}", "model=r3d_18", f"model.weights={tmp_path}/r3d.pt"
    )
    assert_clean_user_error(result, "model.weights=", "r3d.pt")


def test_eval_with_a_missing_checkpoint_exits_2(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script(f"ckpt={tmp_path / 'best.ckpt'}", script="vidlearn-eval")
    assert_clean_user_error(result, "best.ckpt")


def test_full_error_variable_shows_the_traceback(tmp_path: Path) -> None:
    """Real script: the interpreter, not Hydra, prints the traceback and exits 1."""
    result = run_real_script(tmp_path, "data.size=-5", HYDRA_FULL_ERROR="1")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "data.size=-5" in result.stderr


def test_a_bug_keeps_its_traceback(console_script: RunScript, tmp_path: Path) -> None:
    @console_main("train")
    def main(cfg: DictConfig) -> None:
        raise KeyError("a bug")

    result = console_script(main, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "a bug" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            ["data.normalise_on_device=true", "+data.per_frame_max_norm=true"],
            ["data.normalise_on_device", "data.per_frame_max_norm"],
        ),
        (["augment=hms_cine_device", "augment.device.p=2"], ["augment.device", "p=2"]),
        (["augment=hms_cine_device", "augment.device.rotate=[10,-10]"], ["rotate=[10.0, -10.0]"]),
        (
            ["augment=light_device", "augment.device.steps.1.contrast=[0.3,-0.3]"],
            ["augment.device", "contrast=[0.3, -0.3]"],
        ),
        (["model.temporal=lstm"], ["model.temporal='lstm'"]),
        (["data.backend=foo"], ["data.backend='foo'", "pyav"]),
    ],
)
def test_invalid_option_combination_names_the_keys(
    run_script: RunScript, demo_videos: Path, overrides: list[str], named: list[str]
) -> None:
    result = run_script(f"data.manifest={demo_videos}", *overrides)
    assert_clean_user_error(result, *named)


def test_unknown_demo_kind_names_the_key(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script("kind=clips", f"out={tmp_path / 'demo'}", script="vidlearn-demo")
    assert_clean_user_error(result, "kind=clips", "videos")


def test_export_to_an_unknown_format_names_the_key(run_script: RunScript, tmp_path: Path) -> None:
    result = run_script(f"ckpt={tmp_path / 'best.ckpt'}", "format=tflite", script="vidlearn-export")
    assert_clean_user_error(result, "format='tflite'", "torchscript")


def test_a_monitor_the_run_never_logs_names_the_key_and_the_logged_metrics(
    run_script: RunScript, demo_videos: Path
) -> None:
    result = run_script(
        f"data.manifest={demo_videos}",
        "data.size=32",
        "data.frames=4",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "monitor=nope/metric",
    )
    assert_clean_user_error(result, "monitor=nope/metric", "val/loss")


def test_onnx_export_without_onnxruntime_says_what_to_install(
    run_script: RunScript, tmp_path: Path, video_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    result = run_script(
        f"ckpt={video_checkpoint}",
        "format=onnx",
        f"out={tmp_path / 'model.onnx'}",
        script="vidlearn-export",
    )
    assert_clean_user_error(result, "format=onnx needs onnx and onnxruntime", "vidlearn[export]")


def test_a_model_constructors_config_error_is_shown_as_it_is(
    run_script: RunScript, demo_videos: Path
) -> None:
    result = run_script(f"data.manifest={demo_videos}", "model.readout=lst")
    assert_clean_user_error(result, "model.readout='lst' is not one of last, mean, attention.")
    assert "Error in call to target" not in result.stderr
