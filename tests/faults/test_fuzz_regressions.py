"""Inputs experiments/fuzz_cli.py found to end in a traceback; each now ends in a clean message.

The console scripts run in-process, as the fuzzer runs them: `main()` with `sys.argv` patched,
exit code and stderr checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import restored_process_state
from hydra.errors import InstantiationException

from vidlearn.cli import cache, export, manifest, stats, train
from vidlearn.cli.console import user_mistake
from vidlearn.data.clip_sampling import SlidingWindowSampler
from vidlearn.data.manifest import ManifestError, read_manifest
from vidlearn.data.transforms import normalise_tensor
from vidlearn.errors import ConfigError, UserError
from vidlearn.inference.evaluate import evaluate_predictions
from vidlearn.inference.inputs import list_inputs
from vidlearn.inference.predictor import Predictions, resolve_device


def run_main(monkeypatch: pytest.MonkeyPatch, capsys, main, *argv: str) -> tuple[int, str]:
    """Call a console script's main as its console script would; (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["vidlearn-script", *argv])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with restored_process_state():  # Hydra's state, seeds, logging handlers (tests/conftest.py)
        try:
            code = main() or 0
        except SystemExit as stop:
            code = stop.code
    return code, capsys.readouterr().err


def test_a_malformed_override_exits_2_after_an_earlier_call_ran_its_task(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    started = run_main(monkeypatch, capsys, stats.main, f"data.manifest={tmp_path}/no.csv")[0]
    malformed = run_main(monkeypatch, capsys, stats.main, "data.size")[0]
    assert (started, malformed) == (2, 2)


def test_stats_refuses_a_mistyped_clip_length_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(
        monkeypatch, capsys, stats.main, "data.frames=abc", f"data.manifest={tmp_path}/no.csv"
    )
    assert code == 2 and "data.frames='abc' has the wrong type" in err


def test_a_mean_that_is_not_a_list_is_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(
        monkeypatch, capsys, stats.main, "data.mean=0.5", f"data.manifest={tmp_path}/no.csv"
    )
    assert code == 2 and "data.mean=0.5 has the wrong type" in err


def test_export_refuses_a_seed_that_is_not_a_number_before_loading(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, export.main, f"ckpt={tmp_path}/x.ckpt", "seed=abc")
    assert code == 2 and "seed='abc' has the wrong type" in err


def test_cache_reports_a_config_mistake_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run_main(monkeypatch, capsys, cache.main, "data.frame_cache=null")
    assert code == 2 and "data.frame_cache is null" in err and "Traceback" not in err


def test_merge_into_a_folder_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    (tmp_path / "labels.csv").write_text("path,label\na.jpg,x\n")
    tranche = f"1={tmp_path / 'images'}:{tmp_path / 'labels.csv'}"
    code = manifest.main(["merge", "--tranche", tranche, "--out", str(tmp_path)])
    assert code == 2 and str(tmp_path) in capsys.readouterr().err


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "b.mp4").write_bytes(b"")
    path = tmp_path / "manifest.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_a_row_with_more_cells_than_the_header_is_a_manifest_error(tmp_path: Path) -> None:
    path = write(tmp_path, "path,label\na.mp4,x,extra\nb.mp4,y\n")
    with pytest.raises(ManifestError, match="more cells than the header"):
        read_manifest(path)


def test_a_column_named_twice_up_to_spaces_is_a_manifest_error(tmp_path: Path) -> None:
    path = write(tmp_path, "path, path ,label\na.mp4,a.mp4,x\n")
    with pytest.raises(ManifestError, match=r"\['path'\] appear more than once"):
        read_manifest(path)


def test_a_column_named_line_is_a_manifest_error(tmp_path: Path) -> None:
    path = write(tmp_path, "path,label,line\na.mp4,x,3\n")
    with pytest.raises(ManifestError, match="'line' is reserved"):
        read_manifest(path)


def test_an_unknown_encoding_is_a_manifest_error_naming_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "path,label\na.mp4,x\n")
    with pytest.raises(ManifestError, match="data.encoding='foo'"):
        read_manifest(path, encoding="foo")


def test_utf16_requested_for_a_utf8_file_is_a_manifest_error(tmp_path: Path) -> None:
    path = write(tmp_path, "path,label\na.mp4,x\n")
    with pytest.raises(ManifestError, match="utf-16"):
        read_manifest(path, encoding="utf-16")


def test_evaluating_files_that_are_all_unreadable_is_a_user_error() -> None:
    names = ["class_a", "class_b"]
    files = pd.DataFrame(
        {"path": ["a.mp4"], "error": ["cannot read a.mp4: moov atom not found"], "windows": [0]}
    ).assign(class_a=np.nan, class_b=np.nan)
    windows = pd.DataFrame(columns=["file", "path", "window", "start_s", "end_s", *names])
    with pytest.raises(UserError, match="none of the 1 file.*moov atom not found"):
        evaluate_predictions(None, Predictions(files, windows, names), np.array([0.0]))


@pytest.mark.parametrize(
    ("script", "override", "message"),
    [
        (stats, "data.backend=foo", "data.backend='foo' is out of range"),
        (export, "format=null", "format=None has the wrong type"),
        (stats, "augment=null", "augment needs the name of a config file"),
        (stats, "=3", "needs the name of a config key"),
        (stats, "+data.unknown_key=1", "unexpected keyword argument 'unknown_key'"),
    ],
)
def test_a_bad_override_exits_2_with_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path, script, override: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    where = f"ckpt={tmp_path}/x.ckpt" if script is export else f"data.manifest={tmp_path}/no.csv"
    code, err = run_main(monkeypatch, capsys, script.main, where, override)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("device", ["foo", "cuda:99", "mps:3"])
def test_a_device_the_machine_lacks_is_a_config_error(device: str) -> None:
    with pytest.raises(ConfigError, match=f"device={device!r}|device={device}"):
        resolve_device(device)


def test_mean_of_the_wrong_length_for_the_frames_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="data.mean has 3"):
        normalise_tensor(torch.zeros(2, 1, 4, 4), [0.5] * 3, [0.25] * 3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=-1", "seed=-1 is out of range"),
        ("stats.max_listed=abc", "stats.max_listed='abc' has the wrong type"),
        ("data.frame_cache=/proc/no/such/folder", "Check the values of that config node"),
    ],
)
def test_stats_refuses_values_that_used_to_end_in_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path, override: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "path,label\na.mp4,x\nb.mp4,y\n")
    code, err = run_main(
        monkeypatch, capsys, stats.main, f"data.manifest={tmp_path}/manifest.csv", override
    )
    assert code == 2 and message in err and "Traceback" not in err


def test_stats_group_by_a_missing_column_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "path,label\na.mp4,x\nb.mp4,y\n")
    code, err = run_main(
        monkeypatch,
        capsys,
        stats.main,
        f"data.manifest={tmp_path}/manifest.csv",
        "stats.probe=false",
        "stats.group_by=[nope]",
        f"paths.cache_dir={tmp_path}/cache",
        "data.probe=false",
    )
    assert code == 2 and "no column 'nope'" in err


def test_export_to_a_folder_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setattr(export, "load_checkpoint", lambda path: None)
    code, err = run_main(monkeypatch, capsys, export.main, "ckpt=x.ckpt", f"out={tmp_path}")
    assert code == 2 and f"Is a directory: '{tmp_path}'" in err


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage"])
def test_predict_input_csv_that_cannot_be_read_is_a_user_error(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "inputs.csv").write_bytes(content)
    with pytest.raises(UserError):
        list_inputs(tmp_path / "inputs.csv", "video")


def test_a_constructor_refusing_a_config_value_is_a_config_error() -> None:
    wrapped = InstantiationException("Error in call to target 'torch.nn.Dropout'\nfull_key: model")
    wrapped.__cause__ = ValueError("dropout probability has to be between 0 and 1, but got 2")
    assert isinstance(user_mistake(wrapped), ConfigError)
    assert "full_key: model" in str(user_mistake(wrapped))


def test_train_asking_for_a_gpu_the_machine_lacks_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path, demo_videos: Path
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, err = run_main(
        monkeypatch,
        capsys,
        train.main,
        f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"data.manifest={demo_videos}",
        "data.num_workers=0",
        "data.probe=false",
        "trainer.accelerator=gpu",
    )
    assert code == 2 and "No supported gpu backend found" in err and "Traceback" not in err


def test_cache_refuses_splits_that_are_not_a_list_of_split_names(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    """Seed 2, case 390: splits=null ended in "'NoneType' object is not iterable"."""
    monkeypatch.chdir(tmp_path)
    for value in ("null", "[train,dev]"):
        code, err = run_main(
            monkeypatch, capsys, cache.main, f"data.frame_cache={tmp_path}/c", f"splits={value}"
        )
        assert code == 2 and "splits=" in err and "Traceback" not in err, err


@pytest.mark.parametrize("key", ["hop", "stride", "clip_length", "target_fps"])
def test_a_sliding_window_option_that_is_not_a_number_names_its_key(key: str) -> None:
    """Seed 2, case 311: views.hop=abc failed comparing a str inside the sampler (a TypeError,
    which now counts as a bug and keeps its traceback), instead of naming the key."""
    options = {"clip_length": 4, key: "abc"}
    with pytest.raises(ConfigError, match=f"{key} must be"):
        SlidingWindowSampler(**options)
