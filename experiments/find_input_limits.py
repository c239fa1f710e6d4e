"""The smallest clips each 3D CNN trains on, found by trying shapes; checks vidlearn's stated limits.

    python experiments/find_input_limits.py                 # all archs of vidlearn.models.cnn3d
    python experiments/find_input_limits.py --archs s3d

Per arch (random weights, train mode): a forward and backward pass on a batch of two
(2, T, 3, S, S) clips for T = 1..8 at S = 64, and S = 1..24 at T = 16. A shape either trains,
fails with a Python error in the forward or the backward pass, or crashes the process (s3d at
T = 5: max_pool3d's backward segfaults), so shapes run in a child process that is restarted after
a crash. The smallest T and S that train are compared with `Video3DCNN(...).input_limits`.
Writes experiments/results/find_input_limits.json and the Markdown block for the README.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import environment, markdown_table, write_result

FRAMES = [(frames, 64) for frames in range(1, 9)]
SIZES = [(16, size) for size in range(1, 25)]


def try_shapes(arch: str, shapes: list[tuple[int, int]]) -> None:
    """Child process: print `T S outcome` per shape as soon as it is known."""
    import torch

    from vidlearn.models.cnn3d import Video3DCNN

    torch.set_num_threads(1)
    model = Video3DCNN(num_outputs=2, arch=arch, weights="none").train()
    for frames, size in shapes:
        stage = "forward"
        try:
            logits = model(torch.randn(2, frames, 3, size, size))  # (2, 2)
            stage = "backward"
            logits.sum().backward()
            outcome = "trains"
        except RuntimeError:
            outcome = f"{stage} error"
        model.zero_grad(set_to_none=True)
        print(frames, size, outcome, flush=True)


def outcomes(arch: str, shapes: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The outcome of every shape; a shape that kills the child is recorded as a crash."""
    found: dict[tuple[int, int], str] = {}
    remaining = list(shapes)
    while remaining:
        spec = ";".join(f"{frames},{size}" for frames, size in remaining)
        child = subprocess.run(
            [sys.executable, __file__, "--child", arch, spec], capture_output=True, text=True
        )
        for line in child.stdout.splitlines():
            frames, size, outcome = line.split(" ", 2)
            found[(int(frames), int(size))] = outcome
        remaining = [shape for shape in remaining if shape not in found]
        if remaining and child.returncode != 0:
            found[remaining.pop(0)] = f"process crash (exit {child.returncode})"
    return found


def smallest(found: dict[tuple[int, int], str], shapes: list[tuple[int, int]], axis: int) -> int:
    """The smallest value of `axis` (0 frames, 1 size) from which every larger one trains."""
    trains = [shape[axis] for shape in shapes if found[shape] == "trains"]
    fails = [shape[axis] for shape in shapes if found[shape] != "trains"]
    return max(fails, default=0) + 1 if trains else -1


def main() -> None:
    from vidlearn.models.cnn3d import ARCHS, LIMITS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    record: dict = {"environment": environment(), "archs": {}}
    rows = []
    for arch in args.archs:
        found = outcomes(arch, FRAMES + SIZES)
        min_frames, min_size = smallest(found, FRAMES, 0), smallest(found, SIZES, 1)
        stated = LIMITS[arch]
        failures = {f"{t}x{s}": outcome for (t, s), outcome in found.items() if outcome != "trains"}
        agrees = (min_frames, min_size) == (stated.min_frames, stated.min_size)
        record["archs"][arch] = {
            "min_frames_at_size_64": min_frames,
            "min_size_at_16_frames": min_size,
            "stated": {"min_frames": stated.min_frames, "min_size": stated.min_size},
            "agrees": agrees,
            "failures": failures,
        }
        crashes = [shape for shape, outcome in failures.items() if "crash" in outcome]
        rows.append(
            [arch, min_frames, min_size, f"{stated.min_frames} / {stated.min_size}",
             "yes" if agrees else "NO", ", ".join(crashes) or "none"]
        )  # fmt: skip
    markdown = markdown_table(
        ["arch", "min T (S=64)", "min S (T=16)", "stated T / S", "agrees", "crashes (T x S)"],
        rows,
    )
    write_result("find_input_limits", record, markdown, args.out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        pairs = [tuple(map(int, pair.split(","))) for pair in sys.argv[3].split(";")]
        try_shapes(sys.argv[2], pairs)
    else:
        main()
