"""LabelEncoder: the task decides the label kind, never the number of distinct values."""

import numpy as np
import pandas as pd
import pytest

from vidlearn.data.labels import LabelEncoder


def test_classes_are_sorted_train_labels() -> None:
    assert LabelEncoder.fit(["sit", "lie", "stand", "sit"], "multiclass").classes == (
        "lie",
        "sit",
        "stand",
    )


def test_numeric_class_names_sort_by_value() -> None:
    assert LabelEncoder.fit(["10", "2", "1"], "multiclass").classes == ("1", "2", "10")


def test_fixed_class_list_keeps_its_order() -> None:
    encoder = LabelEncoder.fit(["a"], "multiclass", classes=["b", "a"])
    targets, problems = encoder.encode(pd.Series(["a", "b"]), [2, 3])
    assert targets.tolist() == [1, 0] and problems == []


def test_unknown_label_is_a_problem_with_its_line() -> None:
    encoder = LabelEncoder.fit(["a", "b"], "multiclass")
    _, problems = encoder.encode(pd.Series(["a", "z"]), [2, 3])
    assert [(p.line, "'z'" in p.message) for p in problems] == [(3, True)]


def test_binary_targets_are_float_zero_one() -> None:
    encoder = LabelEncoder.fit(["0", "1", "0"], "binary")
    targets, _ = encoder.encode(pd.Series(["1", "0"]), [2, 3])
    assert targets.dtype == np.float32 and targets.tolist() == [1.0, 0.0]


def test_binary_with_three_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly 2 classes"):
        LabelEncoder.fit(["a", "b", "c"], "binary")


def test_three_valued_regression_target_stays_regression() -> None:
    # The original recipe treated <= 3 distinct values as classes; the task decides here.
    encoder = LabelEncoder.fit(["1", "2", "3"], "regression")
    targets, problems = encoder.encode(pd.Series(["1", "2", "3"]), [2, 3, 4])
    assert encoder.classes == () and targets.tolist() == [1.0, 2.0, 3.0] and problems == []


def test_non_numeric_regression_label_is_a_problem() -> None:
    encoder = LabelEncoder.fit([], "regression")
    _, problems = encoder.encode(pd.Series(["4.5", "old"]), [2, 3])
    assert [p.line for p in problems] == [3]


@pytest.mark.parametrize("classes", [["a", "b", "a"], ["a", " a", "b"], ["1", 1, "b"]])
def test_a_fixed_class_list_naming_a_class_twice_is_refused(classes: list) -> None:
    # ["a", "b", "a"] made 3 outputs, "a" encoded as 2 and output 0 never trained
    with pytest.raises(ValueError, match=r"data.classes names .*'a'|data.classes names .*'1'"):
        LabelEncoder.fit(["a", "b"], "multiclass", classes=classes)


@pytest.mark.parametrize("odd", ["-nan", "+nan", "inf"])
def test_a_label_that_is_not_a_finite_number_sorts_as_text_after_the_numbers(odd: str) -> None:
    # float("-nan") compares false with everything: the sort then put "10" before "3"
    for labels in (["3", odd, "1", "10"], [odd, "10", "3", "1"], ["10", "1", "3", odd]):
        assert LabelEncoder.fit(labels, "multiclass").classes == ("1", "3", "10", odd)
