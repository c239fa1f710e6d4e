"""Run a function over items in forked worker processes, each call under a deadline.

A decoder that hangs in C code while holding the GIL (decord on some corrupt files) cannot be
interrupted from Python, not even by a signal handler: only killing its process ends it. So each
item goes to a worker process on its own; a call past the deadline has its worker killed and
replaced, and the item comes back `Unfinished`, as does one whose worker died (a decoder crash).
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any


@dataclass(frozen=True)
class Unfinished:
    """A call that did not return: it ran past the deadline (`timed_out`) or its process died."""

    reason: str  # "did not finish in 60 s", "crashed its process (SIGSEGV)"
    timed_out: bool


def map_with_deadline(
    function: Callable[[Any], Any],
    items: Sequence[Any],
    processes: int,
    timeout: float | None,
) -> Iterator[tuple[int, Any]]:
    """(position in `items`, `function(item)` or Unfinished) for every item, as each finishes.

    `processes` forked workers, each given one item at a time; `timeout` in seconds per call,
    None for no deadline. An exception in `function` is a bug, raised here as RuntimeError with
    the worker's traceback. Every worker is gone when the iterator ends or is closed.
    """
    pending = deque(enumerate(items))
    workers = [_Worker(function) for _ in range(min(max(processes, 1), len(items)))]
    try:
        while pending or any(worker.position is not None for worker in workers):
            for worker in workers:
                if worker.position is None and pending:
                    worker.start(*pending.popleft())
            busy = [worker for worker in workers if worker.position is not None]
            deadline = None if timeout is None else min(w.started for w in busy) + timeout
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = set(wait([worker.connection for worker in busy], timeout=left))
            for index, worker in enumerate(workers):
                position = worker.position
                if position is None:
                    continue
                if worker.connection in ready:
                    outcome = worker.result()
                elif timeout is not None and time.monotonic() - worker.started >= timeout:
                    worker.stop()
                    outcome = Unfinished(f"did not finish in {timeout:g} s", True)
                else:
                    continue
                if worker.process is None:  # killed or dead: a fresh fork takes its place
                    workers[index] = _Worker(function)
                yield position, outcome
    finally:
        for worker in workers:
            worker.stop()


class _Worker:
    """One forked process serving calls of `function` over a pipe, one item at a time."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        # fork, as the DataLoader's workers: ~0.01 s to start against ~4 s for spawn (which
        # re-imports numpy, pandas, torch). Safe while the caller holds no open reader.
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        self.process: multiprocessing.process.BaseProcess | None = context.Process(
            target=_serve, args=(child, function), daemon=True
        )
        self.process.start()
        child.close()
        self.position: int | None = None
        self.started = 0.0

    def start(self, position: int, item: Any) -> None:
        self.connection.send(item)
        self.position, self.started = position, time.monotonic()

    def result(self) -> Any:
        """The answer to the item given; Unfinished when the process died before giving it."""
        try:
            ok, value = self.connection.recv()
        except (EOFError, OSError):
            self.process.join()
            code = self.process.exitcode or 0
            self._end()
            cause = signal.Signals(-code).name if code < 0 else f"exit code {code}"
            return Unfinished(f"crashed its process ({cause})", False)
        if not ok:
            self.stop()
            raise RuntimeError(f"a worker process raised:\n{value}")
        self.position = None
        return value

    def stop(self) -> None:
        """Kill the process (it may hang), then close the pipe; idempotent."""
        if self.process is not None:
            self.process.kill()
            self.process.join()
            self._end()

    def _end(self) -> None:
        self.process.close()
        self.process = None
        self.connection.close()


def _serve(connection: Connection, function: Callable[[Any], Any]) -> None:
    """The worker's loop: answer each item with (True, result) or (False, traceback text)."""
    while True:
        try:
            item = connection.recv()
        except EOFError:  # the parent closed the pipe
            return
        try:
            answer = (True, function(item))
        except Exception:
            answer = (False, traceback.format_exc())
        try:
            connection.send(answer)
        except Exception:  # a result that cannot be pickled is a bug too, not a crashed decoder
            connection.send((False, traceback.format_exc()))
