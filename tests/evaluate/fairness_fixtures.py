"""Synthetic evaluation data with a planted disparity, shared by the evaluate tests.

A uniquely named module (not ``conftest``) so that ``from fairness_fixtures import Planted`` cannot pick up
another directory's conftest; ``conftest.py`` here only re-exports the fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@dataclass(frozen=True)
class Planted:
    """Group ``b`` gets higher scores (shifted features): its selection rate is planted higher."""

    frame: pd.DataFrame  # columns: x, A, B, y, score, prediction
    x: np.ndarray
    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    score: np.ndarray
    pred: np.ndarray


def make_planted(n: int = 1500, seed: int = 0) -> Planted:
    rng = np.random.default_rng(seed)
    a = rng.choice(["a", "b"], n, p=[0.7, 0.3])
    b = rng.choice(["x", "y"], n)
    x = rng.normal(size=n) + (a == "b") * 0.8
    y = (x + rng.normal(scale=0.5, size=n) > 0.6).astype(int)
    score = 1.0 / (1.0 + np.exp(-3.0 * (x - 0.6)))
    pred = (score >= 0.5).astype(int)
    frame = pd.DataFrame({"x": x, "A": a, "B": b, "y": y, "score": score, "prediction": pred})
    return Planted(frame, x, a, b, y, score, pred)


@pytest.fixture(scope="session")
def planted() -> Planted:
    return make_planted()


@pytest.fixture
def planted_files(tmp_path: Path, planted: Planted) -> tuple[Path, Path, Path]:
    """(checkpoint dir, data.csv, predictions.csv) for the planted data."""
    ckpt = tmp_path / "model"
    ckpt.mkdir()
    (ckpt / "weights.bin").write_bytes(b"\x00" * 64)
    data = tmp_path / "data.csv"
    planted.frame[["x", "A", "B", "y"]].to_csv(data, index=False)
    preds = tmp_path / "preds.csv"
    planted.frame[["prediction", "score"]].to_csv(preds, index=False)
    return ckpt, data, preds
