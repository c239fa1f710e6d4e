"""experiments/gpu_check.py: its --dry run on the CPU, and the budget and isolation of its sections."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.fixture
def gpu_check(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, with experiments/ on sys.path as `python experiments/...` has it."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    import gpu_check

    return gpu_check


def test_dry_run_gives_every_section_a_figure_or_a_skip_reason_and_no_error(
    gpu_check: ModuleType, demo_videos: Path, tmp_path: Path
) -> None:
    gpu_check.main(["--dry", "--manifest", str(demo_videos), "--out", str(tmp_path)])
    record = json.loads((tmp_path / "gpu_check_dry.json").read_text())
    sections = record["sections"]
    assert list(sections) == list(gpu_check.SECTIONS)
    for name, section in sections.items():
        assert section["status"] == "ok" and not section["errors"], (name, section)
        measured = {item for item in section["figures"] if item not in ("setup", "presets")}
        assert measured, f"{name} measured nothing"
        assert all(reason.startswith("skipped: dry") for reason in section["skipped"].values())
    assert sections["bench_train"]["figures"]["bf16-mixed"]["ratio"] > 0
    assert "16-mixed" in sections["bench_train"]["skipped"]
    for variant in ("uncached", "frame_cache"):
        assert sections["loader"]["figures"][variant]["epoch_2_steps_per_s"] > 0
    assert sections["ddp"]["figures"]["trainer=ddp_cpu (gloo)"]["summary_json"] is True
    assert sections["cnn3d"]["figures"]["bf16+channels_last_3d"] > 0
    assert sections["transformers"]["figures"]["videomae/bf16+channels_last_3d+compile"] > 0
    assert record["environment"]["gpu"] is None
    assert "| ddp | trainer=ddp_cpu (gloo) |" in (tmp_path / "gpu_check_dry.md").read_text()


def test_without_a_gpu_and_without_dry_it_stops_saying_no_gpu_was_found(
    gpu_check: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        gpu_check.main(["--out", str(tmp_path)])
    assert "no GPU found" in str(stop.value.code) and "--dry" in str(stop.value.code)
    assert not list(tmp_path.iterdir())


def test_a_failing_section_records_its_error_and_the_next_section_still_runs(
    gpu_check: ModuleType,
) -> None:
    def failing(section) -> None:
        raise ValueError("broken on purpose")

    def working(section) -> None:
        section.measure("value", lambda: 1.5)

    records = gpu_check.run_sections([("bad", 1.0, failing), ("good", 1.0, working)], 60.0)
    assert records["bad"]["status"] == "error"
    assert "ValueError: broken on purpose" in records["bad"]["errors"]["section"]
    assert records["good"]["status"] == "ok" and records["good"]["figures"] == {"value": 1.5}


def test_a_failing_item_is_recorded_and_the_section_goes_on(gpu_check: ModuleType) -> None:
    def body(section) -> None:
        section.measure("bad", lambda: 1 / 0)
        section.measure("good", lambda: 2.0)

    record = gpu_check.run_sections([("one", 1.0, body)], 60.0)["one"]
    assert record["status"] == "error" and record["figures"] == {"good": 2.0}
    assert record["errors"]["bad"].startswith("ZeroDivisionError")


def test_an_item_expected_to_pass_the_share_is_skipped_for_budget(gpu_check: ModuleType) -> None:
    ran = []

    def body(section) -> None:
        section.measure("long", lambda: ran.append(1), estimate=section.seconds + 60)

    record = gpu_check.run_sections([("one", 1.0, body)], 5.0)["one"]
    assert not ran and record["skipped"]["long"].startswith("skipped: budget")


def test_a_section_past_its_share_is_stopped_and_its_figures_so_far_kept(
    gpu_check: ModuleType,
) -> None:
    def slow(section) -> None:
        section.measure("first", lambda: 1.0)
        section.measure("second", lambda: time.sleep(30))

    def quick(section) -> None:
        section.measure("value", lambda: 3.0)

    start = time.perf_counter()
    records = gpu_check.run_sections([("slow", 1.0, slow), ("quick", 1.0, quick)], 1.0)
    assert time.perf_counter() - start < 10
    assert records["slow"]["status"].startswith("stopped: budget")
    assert records["slow"]["figures"] == {"first": 1.0}
    assert records["slow"]["skipped"]["second"].startswith("stopped: budget")
    assert records["quick"]["status"] == "ok"


def test_transformer_presets_are_read_from_the_model_folder_by_target(
    gpu_check: ModuleType, tmp_path: Path
) -> None:
    targets = {
        "swin_x": "vidlearn.models.video_transformers.VideoTransformer",
        "mae_x": "vidlearn.models.hf_video.VideoMAE",
        "cnn_x": "vidlearn.models.cnn3d.Video3DCNN",
    }
    for name, target in targets.items():
        (tmp_path / f"{name}.yaml").write_text(f"_target_: {target}\n")
    assert gpu_check.transformer_presets(tmp_path) == ["mae_x", "swin_x"]
    assert {"videomae", "timesformer"} <= set(gpu_check.transformer_presets())


@pytest.fixture
def recording_section(gpu_check: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """bench_train replaced by a body that records its share of the budget and runs nothing."""
    shares: list[float] = []
    monkeypatch.setitem(gpu_check.SECTIONS, "bench_train", lambda ctx, s: shares.append(s.seconds))
    return shares


@pytest.mark.parametrize("budget", ["0", "-5", "nan", "inf"])
def test_a_budget_that_is_not_a_positive_number_is_refused_before_anything_runs(
    gpu_check: ModuleType, recording_section: list[float], tmp_path: Path, budget: str
) -> None:
    """Caught the merged code: --budget 0 was falsy and became the 900 s default; nan and inf
    reached the alarm timer."""
    arguments = ["--dry", "--only", "bench_train", "--manifest", "m.csv", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        gpu_check.main([*arguments, "--budget", budget])
    assert stop.value.code == 2 and not recording_section and not list(tmp_path.iterdir())


def test_a_missing_out_folder_is_made_and_an_unusable_one_refused_before_the_run(
    gpu_check: ModuleType, recording_section: list[float], tmp_path: Path
) -> None:
    """Caught the merged code: an --out that is a file failed on writing, after the whole run."""
    arguments = ["--dry", "--only", "bench_train", "--manifest", "m.csv", "--out"]
    gpu_check.main([*arguments, str(tmp_path / "new" / "folder")])
    assert (tmp_path / "new" / "folder" / "gpu_check_dry.json").is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        gpu_check.main([*arguments, str(tmp_path / "file")])
    assert stop.value.code == 2 and len(recording_section) == 1
