"""SIGKILL a saving process at many random instants: the latest committed checkpoint always loads."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cairn

WORKER = Path(__file__).with_name("crash_worker.py")
KILLS = 24


@pytest.mark.slow
@pytest.mark.parametrize("async_save", ["1", "0"])
def test_sigkill_at_random_instants_never_leaves_a_bad_latest(tmp_path: Path, async_save: str) -> None:
    rnd = random.Random(20261124)
    survived: list[int] = []
    for _ in range(KILLS // 2):
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path), async_save], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rnd.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()

        manager = cairn.CheckpointManager(tmp_path, async_save=False)  # cleans leftovers of the crash
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
        latest = manager.latest_step()
        if latest is None:
            continue
        cairn.verify(manager.path(latest))
        target = {"w": np.empty(1_000_000, np.float32), "b": np.empty(7, np.int64)}
        manager.restore("latest", model=target)
        assert (target["w"] == latest).all() and (target["b"] == latest).all()
        assert len(manager.steps()) <= 3  # LatestN(2) plus at most one whose deletion was interrupted
        survived.append(latest)
    assert len(survived) >= KILLS // 4, "the worker was killed too early to have saved anything"
    assert survived == sorted(survived)
