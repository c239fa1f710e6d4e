"""MulticlassTask: learning, epoch metrics, per-class recall, confusion matrix and predictions."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from vidlearn.tasks.multiclass import MulticlassTask

ADAM = partial(torch.optim.Adam, lr=0.02)
CLASSES = ["walk", "run", "sit"]


def test_multiclass_task_overfits_one_batch(tiny_net, make_batch, fit, validate) -> None:
    batch = make_batch(torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    task = MulticlassTask(tiny_net(3), CLASSES, optimizer=ADAM)
    fit(task, batch, repeats=100)
    metrics = validate(task, batch)
    assert metrics["val/accuracy"] == 1.0
    assert metrics["val/loss"] < 0.05


def _validate_fixed_logits(validate, logits: torch.Tensor, target: torch.Tensor) -> tuple:
    """Validate a task whose model outputs exactly `logits`; returns (metrics, task)."""

    class FixedLogits(torch.nn.Module):
        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return logits

    task = MulticlassTask(FixedLogits(), CLASSES)
    batch = {
        "input": torch.zeros(len(target), 1),
        "target": target,
        "index": torch.arange(len(target)),
    }
    metrics = validate(task, batch)
    return metrics, task


def test_balanced_accuracy_is_mean_recall_over_classes_on_imbalanced_data(validate) -> None:
    # 6 x walk (5 right), 2 x run (1 right), 1 x sit (1 right): accuracy 7/9, recalls 5/6, 1/2, 1
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 2])
    metrics, _ = _validate_fixed_logits(validate, torch.eye(3)[predicted] * 5, target)
    assert metrics["val/accuracy"] == pytest.approx(7 / 9)
    assert metrics["val/balanced_accuracy"] == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)


def test_recall_is_logged_per_class_name(validate) -> None:
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 2])
    metrics, _ = _validate_fixed_logits(validate, torch.eye(3)[predicted] * 5, target)
    assert metrics["val/recall/walk"] == pytest.approx(5 / 6)
    assert metrics["val/recall/run"] == pytest.approx(1 / 2)
    assert metrics["val/recall/sit"] == pytest.approx(1.0)


def test_macro_f1_averages_the_per_class_f1(validate) -> None:
    target = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 0, 0, 0, 0, 1, 1, 0, 2])
    metrics, _ = _validate_fixed_logits(validate, torch.eye(3)[predicted] * 5, target)
    # walk: precision 5/6 recall 5/6; run: 1/2 and 1/2; sit: 1 and 1
    assert metrics["val/f1"] == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)


def test_confusion_matrix_of_the_last_validation_is_kept_by_split(validate) -> None:
    target = torch.tensor([0, 0, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1])
    _, task = _validate_fixed_logits(validate, torch.eye(3)[predicted] * 5, target)
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [0, 1, 0]])  # rows: true class
    assert torch.equal(task.confusion["val"], expected)


def test_class_absent_from_the_split_gets_no_recall_and_no_share_of_balanced_accuracy(
    validate,
) -> None:
    target = torch.tensor([0, 0, 1, 1])
    predicted = torch.tensor([0, 0, 1, 0])
    metrics, _ = _validate_fixed_logits(validate, torch.eye(3)[predicted] * 5, target)
    assert "val/recall/sit" not in metrics
    assert metrics["val/balanced_accuracy"] == pytest.approx((1 + 1 / 2) / 2)


def test_predict_step_returns_probabilities_prediction_and_index(tiny_net, make_batch) -> None:
    task = MulticlassTask(tiny_net(3), CLASSES)
    batch = make_batch(torch.tensor([0, 1]))
    batch["index"] = torch.tensor([7, 3])
    outputs = task.predict_step(batch, 0)
    assert outputs["probabilities"].shape == (2, 3)
    assert torch.allclose(outputs["probabilities"].sum(dim=1), torch.ones(2))
    assert torch.equal(outputs["prediction"], outputs["probabilities"].argmax(dim=1))
    assert torch.equal(outputs["index"], torch.tensor([7, 3]))


def test_class_weights_weight_the_cross_entropy(tiny_net) -> None:
    task = MulticlassTask(tiny_net(3), CLASSES, class_weights=[1.0, 2.0, 3.0])
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([1, 2])
    expected = torch.nn.functional.cross_entropy(
        logits, target, weight=torch.tensor([1.0, 2.0, 3.0])
    )
    assert torch.isclose(task.compute_loss(logits, target), expected)


def test_whole_number_class_weights_weight_the_cross_entropy_too(tiny_net) -> None:
    """`task.class_weights=[1,2,3]`, as a user types it. Failed before the fix: the weights
    became an int64 tensor and cross_entropy raised "expected scalar type Float but found
    Long" at the first training step."""
    task = MulticlassTask(tiny_net(3), CLASSES, class_weights=[1, 2, 3])
    logits = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([1, 2])
    expected = torch.nn.functional.cross_entropy(
        logits, target, weight=torch.tensor([1.0, 2.0, 3.0])
    )
    assert torch.isclose(task.compute_loss(logits, target), expected)


def test_model_with_wrong_output_width_is_reported_with_the_expected_shape(
    tiny_net, make_batch
) -> None:
    task = MulticlassTask(tiny_net(2), CLASSES)
    with pytest.raises(ValueError, match=r"num_outputs=3"):
        task.predict_step(make_batch(torch.tensor([0, 1])), 0)


def test_class_weights_of_the_wrong_length_are_rejected(tiny_net) -> None:
    with pytest.raises(ValueError, match="one positive weight per class"):
        MulticlassTask(tiny_net(3), CLASSES, class_weights=[1.0, 2.0])
