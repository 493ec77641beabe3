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


def _manager_after_crash(root: Path) -> cairn.CheckpointManager:
    """A manager on the killed worker's directory (it cleans the leftovers of the crash).

    A kill that lands while the worker forks ``git`` (metadata capture) leaves the child holding a copy of
    the lock's file descriptor until it execs, so the lock may outlive the worker by a moment.
    """
    for _ in range(50):
        manager = cairn.CheckpointManager(root, async_save=False)
        if manager.writable:
            break
        manager.close()
        time.sleep(0.1)
    return manager


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

        manager = _manager_after_crash(tmp_path)
        assert manager.writable  # the killed writer's lock died with it
        assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".trash-"))]
        latest = manager.latest_step()
        if latest is None:
            manager.close()
            continue
        cairn.verify(manager.path(latest))
        target = {"w": np.empty(1_000_000, np.float32), "b": np.empty(7, np.int64)}
        manager.restore("latest", model=target)
        assert (target["w"] == latest).all() and (target["b"] == latest).all()
        assert len(manager.steps()) <= 3  # LatestN(2) plus at most one whose deletion was interrupted
        survived.append(latest)
        manager.close()
    assert len(survived) >= KILLS // 4, "the worker was killed too early to have saved anything"
    assert survived == sorted(survived)
