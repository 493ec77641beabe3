"""Saves forever into a CheckpointManager until killed; used by test_crash.py.

Each step's state is an array filled with the step number, so a reader can tell a checkpoint's content
belongs to its step.
"""

from __future__ import annotations

import sys

import numpy as np

import cairn
from cairn.checkpoint.policies import LatestN


def main(directory: str, async_save: str) -> None:
    manager = cairn.CheckpointManager(directory, keep_policy=LatestN(2), async_save=async_save == "1")
    start = (manager.latest_step() or 0) + 1
    print("ready", flush=True)
    weights = np.zeros(1_000_000, dtype=np.float32)
    for step in range(start, start + 100_000):
        weights.fill(step)
        manager.save(step, model={"w": weights, "b": np.full(7, step, np.int64)}, metrics={"step": step})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
