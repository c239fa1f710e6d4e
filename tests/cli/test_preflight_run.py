"""vidlearn-train's pre-flight pass does not change what training computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import compose_small_train

import vidlearn.cli.train
from vidlearn.cli.train import train


def final_weights(summary: dict) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(summary["best_checkpoint"], weights_only=True, map_location="cpu")
    return checkpoint["state_dict"]


@pytest.mark.slow
def test_a_run_with_preflight_trains_exactly_as_one_without(
    demo_videos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Augmentation and random clip starts draw from the seeded streams the pre-flight also uses.
    overrides = (f"data.manifest={demo_videos}", "data.size=32", "data.frames=6", "augment=light")
    with_preflight = train(compose_small_train(tmp_path / "with", *overrides))
    # Without the pass: only the example input the model summary takes (one item, no pass).
    monkeypatch.setattr(
        vidlearn.cli.train, "preflight", lambda task, dataset, *rest: dataset[0]["input"][None]
    )
    without = train(compose_small_train(tmp_path / "without", *overrides))

    assert with_preflight["metrics"] == without["metrics"]
    weights, reference = final_weights(with_preflight), final_weights(without)
    assert all(torch.equal(weights[name], reference[name]) for name in reference)
