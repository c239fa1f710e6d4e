"""BinaryTask: learning, threshold-free and thresholded metrics, log loss and predictions."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from vidlearn.errors import ConfigError
from vidlearn.tasks.binary import BinaryTask

ADAM = partial(torch.optim.Adam, lr=0.02)
CLASSES = ["normal", "abnormal"]


def test_binary_task_overfits_one_batch(tiny_net, make_batch, fit, validate) -> None:
    batch = make_batch(torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    task = BinaryTask(tiny_net(1), CLASSES, optimizer=ADAM, pos_weight=2.0)
    fit(task, batch, repeats=100)
    metrics = validate(task, batch)
    assert metrics["val/accuracy"] == 1.0
    assert metrics["val/auroc"] == 1.0
    assert metrics["val/log_loss"] < 0.05


def _validate_fixed_probabilities(
    validate, probabilities: list[float], target: list[float], **options: object
) -> dict:
    """Validate a task whose model outputs the logits of `probabilities`; returns the metrics."""
    logits = torch.logit(torch.tensor(probabilities)).unsqueeze(1)  # (B, 1)

    class FixedLogits(torch.nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return logits

    task = BinaryTask(FixedLogits(), CLASSES, threshold=0.5, **options)
    batch = {
        "input": torch.zeros(len(target), 1),
        "target": torch.tensor(target),
        "index": torch.arange(len(target)),
    }
    return validate(task, batch)


PROBABILITIES = [0.9, 0.4, 0.2, 0.1, 0.6, 0.3]
TARGET = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # positives: 1 of 2 found; negatives: 3 of 4 right


def test_balanced_accuracy_averages_sensitivity_and_specificity(validate) -> None:
    metrics = _validate_fixed_probabilities(validate, PROBABILITIES, TARGET)
    assert metrics["val/accuracy"] == pytest.approx(4 / 6)
    assert metrics["val/recall/abnormal"] == pytest.approx(1 / 2)
    assert metrics["val/recall/normal"] == pytest.approx(3 / 4)
    assert metrics["val/balanced_accuracy"] == pytest.approx((1 / 2 + 3 / 4) / 2)


def test_auroc_counts_correctly_ordered_positive_negative_pairs(validate) -> None:
    metrics = _validate_fixed_probabilities(validate, PROBABILITIES, TARGET)
    # 0.9 beats all 4 negatives; 0.4 beats 0.2, 0.1 and 0.3 but not 0.6: 7 of 8 pairs
    assert metrics["val/auroc"] == pytest.approx(7 / 8)


def test_log_loss_is_the_mean_binary_cross_entropy_over_the_split(validate) -> None:
    metrics = _validate_fixed_probabilities(validate, PROBABILITIES, TARGET)
    expected = -sum(
        math.log(p) if y else math.log(1 - p) for p, y in zip(PROBABILITIES, TARGET, strict=True)
    ) / len(TARGET)
    assert metrics["val/log_loss"] == pytest.approx(expected, rel=1e-5)


def test_f1_is_zero_when_no_positive_is_predicted(validate) -> None:
    metrics = _validate_fixed_probabilities(validate, [0.1, 0.2, 0.3], [1.0, 0.0, 1.0])
    assert metrics["val/f1"] == 0.0


def test_predict_step_applies_the_threshold_to_the_positive_probability() -> None:
    class FixedLogits(torch.nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return torch.logit(torch.tensor([[0.2], [0.35], [0.8]]))

    task = BinaryTask(FixedLogits(), CLASSES, threshold=0.3)
    batch = {"input": torch.zeros(3, 1), "index": torch.tensor([4, 5, 6])}
    outputs = task.predict_step(batch, 0)
    assert torch.allclose(outputs["probability"], torch.tensor([0.2, 0.35, 0.8]))
    assert torch.equal(outputs["prediction"], torch.tensor([0, 1, 1]))
    assert torch.equal(outputs["index"], torch.tensor([4, 5, 6]))


def test_pos_weight_scales_the_loss_of_positive_items(tiny_net) -> None:
    task = BinaryTask(tiny_net(1), CLASSES, pos_weight=3.0)
    logits = torch.tensor([[0.5]])
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], torch.tensor([1.0]))
    assert torch.isclose(task.compute_loss(logits, torch.tensor([1.0])), 3 * plain)


def test_binary_task_rejects_a_class_list_that_is_not_two_long(tiny_net) -> None:
    with pytest.raises(ValueError, match="exactly 2 classes"):
        BinaryTask(tiny_net(1), ["a", "b", "c"])


def test_auroc_of_a_split_with_one_class_is_nan_and_said_once(validate, caplog) -> None:
    """Issue 21 item 8: torchmetrics logged 0, which the default monitor then followed."""
    task = BinaryTask(torch.nn.Linear(1, 1), CLASSES)
    batch = {"input": torch.randn(3, 1), "target": torch.zeros(3), "index": torch.arange(3)}
    with caplog.at_level("WARNING", logger="vidlearn.tasks.base"):
        first = validate(task, batch)
        validate(task, batch)
    assert math.isnan(first["val/auroc"]) and math.isnan(first["val/average_precision"])
    said = [r.getMessage() for r in caplog.records if "val/auroc is NaN" in r.getMessage()]
    assert len(said) == 1 and "both classes" in said[0]


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_label_smoothing_trains_on_targets_pulled_towards_one_half(tiny_net, smoothing) -> None:
    task = BinaryTask(tiny_net(1), CLASSES, label_smoothing=smoothing)
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    target = torch.tensor([1.0, 0.0, 1.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits.squeeze(-1), target * (1 - smoothing) + smoothing / 2
    )
    assert task.compute_loss(logits, target) == pytest.approx(expected.item())


def test_label_smoothing_leaves_the_metrics_on_the_0_1_targets(validate) -> None:
    plain = _validate_fixed_probabilities(validate, PROBABILITIES, TARGET)
    smoothed = _validate_fixed_probabilities(validate, PROBABILITIES, TARGET, label_smoothing=0.2)
    assert smoothed["val/loss"] != pytest.approx(plain["val/loss"])
    assert {k: v for k, v in smoothed.items() if k != "val/loss"} == {
        k: v for k, v in plain.items() if k != "val/loss"
    }


def test_label_smoothing_of_1_is_a_config_error(tiny_net) -> None:
    with pytest.raises(ConfigError, match="task.label_smoothing"):
        BinaryTask(tiny_net(1), CLASSES, label_smoothing=1.0)
