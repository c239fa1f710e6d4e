"""Smoke tests of the experiment scripts: each runs its --quick configuration on the tiny test
data sets, so a script broken by a change elsewhere fails here. The figures are not checked.

The fast tests cover common.py, bench_train and the memory probe (~10 s); the full script runs train several models
each and are marked slow (`pytest -m slow tests/experiments`).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.fixture
def experiments_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """experiments/ on sys.path, as `python experiments/<script>.py` puts it."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    return EXPERIMENTS


def run_script(monkeypatch: pytest.MonkeyPatch, name: str, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [str(EXPERIMENTS / name), *args])
    runpy.run_path(str(EXPERIMENTS / name), run_name="__main__")


def test_common_helpers(experiments_path: Path, tmp_path: Path) -> None:
    import common

    table = common.markdown_table(["a", "b"], [["x", 0.5]])
    assert table.splitlines()[2] == "| x | 0.500 |"
    env = common.environment()
    assert env["date"] and env["versions"]["torch"]
    common.write_result("demo", {"environment": env, "value": 1}, table, tmp_path)
    assert json.loads((tmp_path / "demo.json").read_text())["value"] == 1
    assert "| x | 0.500 |" in (tmp_path / "demo.md").read_text()
    cfg = common.compose_train(["sampler=none"], tmp_path / "run")
    assert cfg.paths.output_dir == str(tmp_path / "run")
    assert "progress_bar" not in cfg.callbacks


def test_posture_memory_probe(
    experiments_path: Path, demo_images: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run_script(
        monkeypatch,
        "reproduce_posture_recipe.py",
        "--memory-probe",
        "array",
        "--probe-manifest",
        str(demo_images),
        "--memory-size",
        "32",
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["images"] == 60 and result["array_mb"] == pytest.approx(
        60 * 32 * 32 * 3 * 8 / 2**20
    )


def test_bench_train_quick(
    experiments_path: Path, demo_videos: Path, tmp_path: Path, monkeypatch
) -> None:
    # bench_train reads the demo videos through the default manifest: point the cache at a copy.
    run_script(
        monkeypatch,
        "bench_train.py",
        "--quick",
        "--batch-size",
        "2",
        "--frames",
        "4",
        "--size",
        "32",
        "--manifest",
        str(demo_videos),
        "--out",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "bench_train_quick.json").read_text())
    assert record["median_ratio"] > 0


@pytest.mark.slow
def test_reproduce_video_recipe_quick(
    experiments_path: Path, demo_videos: Path, tmp_path: Path, monkeypatch
) -> None:
    run_script(
        monkeypatch,
        "reproduce_video_recipe.py",
        "--quick",
        "--manifest",
        str(demo_videos),
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "reproduce_video_recipe_quick.json").read_text())
    assert set(record["results"]) == {
        "recipe",
        "no_balancing",
        "no_augment",
        "shuffled_mean",
        "r3d_18",
    }


@pytest.mark.slow
def test_reproduce_modern_recipes_quick(
    experiments_path: Path, demo_videos: Path, tmp_path: Path, monkeypatch
) -> None:
    run_script(
        monkeypatch,
        "reproduce_modern_recipes.py",
        "--quick",
        "--manifest",
        str(demo_videos),
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "reproduce_modern_recipes_quick.json").read_text())
    runs, views = record["results"]["0"], record["views"]["0"]  # --quick: seed 0 only
    assert set(runs) == {"none", "mixup", "cutmix", "label_smoothing", "ema", "random_erasing"}
    assert [views[name]["views"]["views"]["max"] for name in views] == [1, 5, 15]
    assert all(run["test_views"]["views"]["clips"]["max"] == 5 for run in runs.values())


@pytest.mark.slow
def test_reproduce_posture_recipe_quick(
    experiments_path: Path, demo_images: Path, tmp_path: Path, monkeypatch
) -> None:
    run_script(
        monkeypatch,
        "reproduce_posture_recipe.py",
        "--quick",
        "--manifest",
        str(demo_images),
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "reproduce_posture_recipe_quick.json").read_text())
    assert record["results"]["frozen"]["per_tranche"]
    assert record["memory"]["loader"]["images"] > 0


@pytest.mark.slow
def test_reproduce_balancing_quick(
    experiments_path: Path, demo_videos: Path, tmp_path: Path, monkeypatch
) -> None:
    run_script(
        monkeypatch,
        "reproduce_balancing.py",
        "--quick",
        "--manifest",
        str(demo_videos),
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path),
    )
    record = json.loads((tmp_path / "reproduce_balancing_quick.json").read_text())
    assert set(record["results"]) == {"none", "sampler", "loss_weights"}


def test_bench_probe_quick(experiments_path: Path, tmp_path: Path, monkeypatch) -> None:
    run_script(monkeypatch, "bench_probe.py", "--quick", "--out", str(tmp_path))
    record = json.loads((tmp_path / "bench_probe_quick.json").read_text())
    warm = record["results"]["warm, 2 processes"]
    assert warm["probed"] == 0 and warm["unusable"] == 0
    assert record["results"]["cold, 1 process"]["probed"] == 40


@pytest.mark.slow
def test_bench_arrays_quick(experiments_path: Path, tmp_path: Path, monkeypatch) -> None:
    run_script(monkeypatch, "bench_arrays.py", "--quick", "--out", str(tmp_path))
    record = json.loads((tmp_path / "bench_arrays.json").read_text())
    assert set(record["ratios"]) == {
        "augment_uint8_vs_original",
        "augment_float32_vs_original",
        "none_vs_original_none",
        "none_uint8_vs_original_none",
        "none_uint8_vs_plain",
        "none_vs_plain",
        "video_light_vs_none",
        "uint8_batches_vs_plain",
    }
    assert all(rate > 0 for rate in record["samples_per_second"].values())


def test_bench_loader_round_on_tiny_videos(experiments_path: Path, tmp_path: Path) -> None:
    bench = runpy.run_path(str(experiments_path / "bench_loader.py"))
    manifest = bench["make_videos"](tmp_path, 4, 12, 64, 48)
    paths = [str(tmp_path / f"clip{i:03d}.mp4") for i in range(4)]
    args = argparse.Namespace(
        clip_length=4, size=32, batch_size=2, epochs=2, cached_epochs=2, uncached_only=False
    )
    args.videos = tmp_path
    assert min(bench["bare_decode"](paths, 2, 4)) > 0
    run = bench["one_round"](0, manifest, paths, 0, args, False)
    # and a one-decoder-thread loader where this machine's cores give the loader more
    one_thread = {"vidlearn_uncached_one_thread", "vidlearn_uncached_one_thread_cpu_per_clip"}
    assert set(run) - one_thread == {
        "vidlearn_uncached_first",
        "vidlearn_uncached_first_cpu",
        "vidlearn_uncached",
        "vidlearn_uncached_cpu_per_clip",
        "vidlearn_uncached_uint8",
        "vidlearn_uncached_uint8_cpu_per_clip",
        "vidlearn_cold",
        "vidlearn_cold_cpu",
        "vidlearn_cached",
    }
    assert all(rate > 0 for rate in run.values())


def test_fuzz_cli_counts_outcomes_of_a_few_cases(experiments_path: Path, tmp_path: Path) -> None:
    import fuzz_cli

    argv = ["--cases", "4", "--seed", "0", "--work", str(tmp_path / "work")]
    record = fuzz_cli.main([*argv, "--out", str(tmp_path / "fuzz.json")])
    assert sum(record["counts"].values()) == record["cases"] == 4
    assert json.loads((tmp_path / "fuzz.json").read_text())["counts"] == record["counts"]
    assert fuzz_cli.classify(2, "vidlearn-train: error: x") == "clean_error"
    assert fuzz_cli.classify(1, "Traceback (most recent call last):") == "traceback"


def test_bench_train_plain_loop_autocasts_to_bf16_as_lightning_does(
    experiments_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under bf16-mixed both sides must run the model in bfloat16 autocast, or the ratio
    compares fp32 with bf16 (the plain loop once autocast only for 16-mixed)."""
    import bench_train
    import torch
    from torch import nn

    dtypes = []

    class AutocastProbe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:  # (B, 4) -> (B, 3)
            enabled = torch.is_autocast_enabled("cpu")
            dtypes.append(torch.get_autocast_dtype("cpu") if enabled else None)
            return self.linear(inputs)

    monkeypatch.setattr(bench_train, "new_model", lambda num_classes: AutocastProbe())
    batches = [{"input": torch.randn(2, 4), "target": torch.tensor([0, 1])}]
    bench_train.plain_loop(batches, ["a", "b", "c"], 1, 0, torch.device("cpu"), "bf16-mixed")
    assert dtypes == [torch.bfloat16]
