"""ResumeState saves and restores every generator the main process draws from, the GPUs' too.

No GPU is needed: torch.cuda's functions are replaced by stand-ins that record what they are given.
"""

from __future__ import annotations

import io
import logging

import pytest
import torch

from vidlearn.callbacks import ResumeState

CUDA_STATES = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5], dtype=torch.uint8)]


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list[list[torch.Tensor]]:
    """torch.cuda as on a machine with 2 GPUs; returns the list set_rng_state_all calls append to."""
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in CUDA_STATES])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    return restored


def test_the_gpus_generators_are_saved(two_gpus: list) -> None:
    saved = ResumeState().state_dict()["cuda"]
    assert [s.tolist() for s in saved] == [s.tolist() for s in CUDA_STATES]


def test_the_gpus_generators_are_restored(two_gpus: list) -> None:
    state = ResumeState().state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)  # as in a checkpoint, read back with weights_only
    ResumeState().load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    assert [[s.tolist() for s in states] for states in two_gpus] == [
        [s.tolist() for s in CUDA_STATES]
    ]


def test_another_gpu_count_keeps_the_generators_and_says_so(
    two_gpus: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = ResumeState().state_dict()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with caplog.at_level(logging.WARNING):
        ResumeState().load_state_dict(state)
    assert two_gpus == []
    assert "2 CUDA devices" in caplog.text and "sees 1" in caplog.text


def test_without_cuda_no_gpu_state_is_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = ResumeState().state_dict()
    assert "cuda" not in state
    ResumeState().load_state_dict(state)  # a CPU checkpoint still restores the CPU generators
    assert torch.equal(torch.get_rng_state(), state["torch"])
