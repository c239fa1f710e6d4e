"""The clips each 3D CNN and video transformer trains on, found by trying shapes; checks vidlearn's
stated limits.

    python experiments/find_input_limits.py                     # the 3D CNNs (vidlearn.models.cnn3d)
    python experiments/find_input_limits.py --archs s3d
    python experiments/find_input_limits.py --family transformers   # models.video_transformers

Per arch (random weights, train mode): a forward and backward pass on a batch of (B, T, 3, S, S)
clips. 3D CNNs: B = 2, T = 1..8 at S = 64, and S = 1..24 at T = 16. Video transformers are big,
so the search stays cheap: B = 1; Swin T = 1..4 at S = 8 and S = 1..8 at T = 2; MViT (built for
16 x 224 x 224) T = 14..18 at S = 224 and S = 216..228 at T = 16, where a wrong clip fails at the
first block, in milliseconds. A shape either trains, fails with a Python error in the forward or
the backward pass, or crashes the process (s3d at T = 5: max_pool3d's backward segfaults), so
shapes run in a child process that is restarted after a crash. Compared with the model's
`input_limits`: the smallest T and S that train (from which every larger one trains) with the
stated minimums, or, for a fixed clip (MViT), the values that train with the stated one.
Writes experiments/results/find_input_limits[_transformers].json and the README's Markdown block.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common import environment, markdown_table, write_result

if TYPE_CHECKING:
    from torch import nn

# Per arch family: the (T, S) shapes along the frames axis, along the size axis, the batch size.
CNN_GRID = ([(t, 64) for t in range(1, 9)], [(16, s) for s in range(1, 25)], 2)
SWIN_GRID = ([(t, 8) for t in range(1, 5)], [(2, s) for s in range(1, 9)], 1)
MVIT_GRID = ([(t, 224) for t in range(14, 19)], [(16, s) for s in range(216, 229)], 1)


def grid(arch: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
    if arch.startswith("swin3d"):
        return SWIN_GRID
    return MVIT_GRID if arch.startswith("mvit") else CNN_GRID


def build(arch: str) -> nn.Module:
    """A random-weights model of `arch` from the module that owns it."""
    from vidlearn.models.cnn3d import ARCHS, Video3DCNN
    from vidlearn.models.video_transformers import VideoTransformer

    model_class = Video3DCNN if arch in ARCHS else VideoTransformer
    return model_class(num_outputs=2, arch=arch, weights="none")


def try_shapes(arch: str, shapes: list[tuple[int, int]]) -> None:
    """Child process: print `T S outcome` per shape as soon as it is known."""
    import torch

    torch.set_num_threads(1)
    model = build(arch).train()
    batch_size = grid(arch)[2]
    for frames, size in shapes:
        stage = "forward"
        try:
            logits = model(torch.randn(batch_size, frames, 3, size, size))  # (B, 2)
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


def training_values(
    found: dict[tuple[int, int], str], shapes: list[tuple[int, int]], axis: int
) -> list[int]:
    """The values of `axis` (0 frames, 1 size) whose shape trains."""
    return [shape[axis] for shape in shapes if found[shape] == "trains"]


def compare(arch: str, found: dict[tuple[int, int], str]) -> tuple[dict, list]:
    """The record and the README row of `arch`: found limits against its stated `input_limits`."""
    from vidlearn.models.cnn3d import LIMITS as CNN_LIMITS
    from vidlearn.models.video_transformers import LIMITS as TRANSFORMER_LIMITS

    stated = {**CNN_LIMITS, **TRANSFORMER_LIMITS}[arch]
    frames_axis, sizes_axis, batch_size = grid(arch)
    failures = {f"{t}x{s}": outcome for (t, s), outcome in found.items() if outcome != "trains"}
    crashes = ", ".join(shape for shape, outcome in failures.items() if "crash" in outcome)
    if stated.fixed_by:  # a fixed clip: the stated value trains, and no larger one does
        found_t = training_values(found, frames_axis, 0)
        found_s = training_values(found, sizes_axis, 1)
        agrees = stated.frames in found_t and stated.size in found_s
        agrees = agrees and max(found_t) == stated.frames and max(found_s) == stated.size
        found_text = (f"T in {found_t}", f"S in {found_s}")
        stated_text = f"exactly {stated.frames} / {stated.size}"
    else:
        found_t, found_s = smallest(found, frames_axis, 0), smallest(found, sizes_axis, 1)
        agrees = (found_t, found_s) == (stated.min_frames, stated.min_size)
        found_text = (f">= {found_t}", f">= {found_s}")
        stated_text = f">= {stated.min_frames} / >= {stated.min_size}"
    record = {
        "batch_size": batch_size,
        "frames_found": found_t,
        "sizes_found": found_s,
        "stated": {
            "min_frames": stated.min_frames,
            "min_size": stated.min_size,
            "frames": stated.frames,
            "size": stated.size,
        },
        "agrees": agrees,
        "failures": failures,
    }
    row = [
        arch,
        f"{found_text[0]} (S={frames_axis[0][1]})",
        f"{found_text[1]} (T={sizes_axis[0][0]})",
        stated_text,
        "yes" if agrees else "NO",
        crashes or "none",
    ]
    return record, row


def main() -> None:
    from vidlearn.models import cnn3d, video_transformers

    families = {"cnn3d": cnn3d.ARCHS, "transformers": video_transformers.ARCHS}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(families), default="cnn3d")
    parser.add_argument("--archs", nargs="+", default=None, help="default: the family's archs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    record: dict = {"environment": environment(), "archs": {}}
    rows = []
    for arch in args.archs or families[args.family]:
        frames_axis, sizes_axis, _ = grid(arch)
        record["archs"][arch], row = compare(arch, outcomes(arch, frames_axis + sizes_axis))
        rows.append(row)
    markdown = markdown_table(
        ["arch", "T that train", "S that train", "stated T / S", "agrees", "crashes (T x S)"],
        rows,
    )
    name = "find_input_limits" + ("" if args.family == "cnn3d" else f"_{args.family}")
    write_result(name, record, markdown, args.out)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        pairs = [tuple(map(int, pair.split(","))) for pair in sys.argv[3].split(";")]
        try_shapes(sys.argv[2], pairs)
    else:
        main()
