"""map_with_deadline off its usual path: no items, more workers than items, results that cannot
travel back, workers that exit cleanly mid-way."""

from __future__ import annotations

import sys
import threading

import pytest

from vidlearn.data.deadline_pool import Unfinished, map_with_deadline


def _same(item: int) -> int:
    return item


def _lock_for_one(item: int) -> object:
    return threading.Lock() if item == 1 else item  # a lock cannot be pickled


def _exit_on_one(item: int) -> int:
    if item == 1:
        sys.exit(0)
    return item


def test_no_items_start_no_worker_and_give_nothing() -> None:
    assert list(map_with_deadline(_same, [], 4, 1.0)) == []


def test_more_workers_than_items_answer_every_item_once() -> None:
    assert sorted(map_with_deadline(_same, [5, 6], 16, 5.0)) == [(0, 5), (1, 6)]


def test_a_result_that_cannot_be_pickled_is_a_bug_raised_not_a_crashed_file() -> None:
    with pytest.raises(RuntimeError, match="cannot pickle"):
        list(map_with_deadline(_lock_for_one, [0, 1, 2], 2, 5.0))


def test_a_worker_that_exits_mid_way_leaves_its_item_unfinished_and_is_replaced() -> None:
    outcomes = dict(map_with_deadline(_exit_on_one, [0, 1, 2, 3], 1, 5.0))
    assert outcomes[1] == Unfinished("crashed its process (exit code 0)", False)
    assert [outcomes[i] for i in (0, 2, 3)] == [0, 2, 3]
