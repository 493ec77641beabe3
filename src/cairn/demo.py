"""A short save/resume demo: ``python -m cairn.demo [DIR]``. NumPy only, so it runs without torch."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import cairn
from cairn.checkpoint.policies import EveryNSteps, LatestN


def run(directory: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8))
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=256)
    weights = {"w": np.zeros(8)}
    manager = cairn.CheckpointManager(directory, save_policy=EveryNSteps(25), keep_policy=LatestN(2))
    for step in range(1, 101):
        grad = 2 * x.T @ (x @ weights["w"] - y) / len(y)
        weights["w"] = weights["w"] - 0.05 * grad
        loss = float(np.mean((x @ weights["w"] - y) ** 2))
        if manager.save(step, model=weights, metrics={"loss": loss}):
            print(f"step {step:3d}  loss {loss:.5f}  saved")
    manager.wait()
    print(f"kept steps {manager.steps()} in {directory}")
    restored = {"w": np.zeros(8)}
    result = manager.restore("latest", model=restored)
    print(f"restored step {result.step}: weights equal = {np.array_equal(restored['w'], weights['w'])}")
    print(f"try: cairn ckpt ls {directory}   cairn ckpt show {manager.path(result.step or 0)}")


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="cairn-demo-")) / "run")
