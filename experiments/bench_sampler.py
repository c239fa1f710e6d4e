"""Time and memory of one epoch's draw of the weighted sampler at 1M, 10M and 50M items.

    python experiments/bench_sampler.py            # all sizes
    python experiments/bench_sampler.py --sizes 1000000

Per size: build the BalancedSampler (1 % positives, alpha 1) once, then draw epoch 0 and 1 of
rank 0 with world size 1. Memory is tracemalloc's peak of numpy allocations above what was held
before the step, per item. Writes experiments/results/bench_sampler.json and prints a Markdown
block for experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vidlearn.data.samplers import BalancedSampler, ShuffleSampler

RESULTS = Path(__file__).parent / "results" / "bench_sampler.json"


def measure(step: Callable[[], Any]) -> tuple[Any, float, int]:
    """(result, seconds, peak bytes allocated above the starting level) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def bench(num_items: int) -> dict[str, float]:
    targets = (np.random.default_rng(0).random(num_items) < 0.01).astype(np.int64)
    sampler, build_s, build_peak = measure(lambda: BalancedSampler(targets, rank=0, world_size=1))
    sampler.set_epoch(0)
    first, draw_s, draw_peak = measure(sampler.share)
    del first
    sampler.set_epoch(1)
    _, draw2_s, _ = measure(sampler.share)
    shuffle = ShuffleSampler(targets, rank=0, world_size=1)
    _, shuffle_s, shuffle_peak = measure(shuffle.share)
    return {
        "items": num_items,
        "build_s": round(build_s, 2),
        "build_peak_bytes_per_item": round(build_peak / num_items, 1),
        "table_bytes_per_item": sampler.table.words.nbytes / num_items,
        "draw_s": round(min(draw_s, draw2_s), 2),
        "draw_peak_bytes_per_item": round(draw_peak / num_items, 2),
        "shuffle_s": round(shuffle_s, 2),
        "shuffle_peak_bytes_per_item": round(shuffle_peak / num_items, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000])
    args = parser.parse_args()
    rows = [bench(size) for size in args.sizes]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    record = {
        "hardware": f"{platform.processor() or platform.machine()}, numpy {np.__version__}",
        "commit": commit or "uncommitted",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2))
    header = (
        "| items | build s | build peak B/item | table B/item | epoch draw s | draw peak B/item "
        "| shuffle s | shuffle peak B/item |"
    )
    lines = [header, "|" + "---|" * 8]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                f"{value:,}" if key == "items" else f"{value:g}" for key, value in row.items()
            )
            + " |"
        )
    print("\n".join(lines))
    print(f"\nwritten: {RESULTS}  (command: python experiments/bench_sampler.py)")


if __name__ == "__main__":
    main()
