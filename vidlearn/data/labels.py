"""Turn raw manifest labels into training targets for one of three kinds of task.

The kind comes from the task (multiclass, binary, regression), never from counting distinct
values: the original video recipe guessed "regression" from "more than 3 distinct labels" and so
treated a 3-valued regression target as classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from vidlearn.data.manifest import Problem

LabelKind = Literal["multiclass", "binary", "regression"]
LABEL_KINDS: tuple[str, ...] = ("multiclass", "binary", "regression")


@dataclass(frozen=True)
class LabelEncoder:
    """Maps raw labels to targets: class index (multiclass), 0/1 (binary) or a float (regression).

    `classes` is the ordered class list for multiclass and binary (binary: `classes[1]` is the
    positive class) and empty for regression.
    """

    kind: str
    classes: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls, labels: Sequence[str], kind: str, classes: Sequence[str] | None = None
    ) -> LabelEncoder:
        """Derive the class list from (training) labels in sorted order unless one is given."""
        if kind not in LABEL_KINDS:
            raise ValueError(f"label kind {kind!r} is not one of {LABEL_KINDS}")
        if kind == "regression":
            return cls(kind)
        if classes:
            # stripped as the manifest's label cells are, so " a" cannot stand beside "a"
            names = tuple(str(name).strip() for name in classes)
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(
                    f"data.classes names {repeated} more than once ({list(classes)}); list each "
                    "class once, in the order of the model's outputs."
                )
        else:
            names = tuple(sorted({str(label) for label in labels}, key=_natural_key))
        if kind == "binary" and len(names) != 2:
            raise ValueError(
                f"a binary task needs exactly 2 classes, found {len(names)}: {list(names)[:10]}; "
                "use task=multiclass, or set data.classes=[negative,positive]."
            )
        if kind == "multiclass" and len(names) < 2:
            raise ValueError(f"a multiclass task needs at least 2 classes, found {list(names)}.")
        return cls(kind, names)

    def encode(self, labels: pd.Series, lines: Sequence[int]) -> tuple[np.ndarray, list[Problem]]:
        """Encode labels; rows that cannot be encoded become Problems (target left at 0)."""
        problems = []
        if self.kind == "regression":
            values = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=np.float32)
            for line, label, value in zip(lines, labels, values, strict=True):
                if not np.isfinite(value):
                    problems.append(
                        Problem(
                            int(line), "label", f"regression label {label!r} is not a finite number"
                        )
                    )
            return np.nan_to_num(values), problems
        index = {name: position for position, name in enumerate(self.classes)}
        targets = np.zeros(len(labels), dtype=np.int64)
        for row, (line, label) in enumerate(zip(lines, labels, strict=True)):
            if label in index:
                targets[row] = index[label]
            else:
                problems.append(
                    Problem(
                        int(line),
                        "label",
                        f"label {label!r} is not one of the classes {list(self.classes)}",
                    )
                )
        if self.kind == "binary":
            return targets.astype(np.float32), problems
        return targets, problems


def _natural_key(name: str) -> tuple[int, float | str, str]:
    """Sort numeric class names by value (2 before 10) and others alphabetically.

    Names equal as numbers ("1", "01", "1.0") are ordered by their text: left to the set they
    come from, the order would change with each process's string hash seed.
    """
    try:
        value = float(name)
    except ValueError:
        return (1, name, name)
    # NaN compares false with every number, which breaks any sort; inf sorts with the text too
    return (0, value, name) if math.isfinite(value) else (1, name, name)
