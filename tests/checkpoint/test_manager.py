"""CheckpointManager: policies applied, restore by latest/best/step, background errors surfaced, flush."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from ckpt_helpers import TinyNet, assert_same_tensors, make_state, train_steps

import cairn
from cairn.checkpoint.policies import AnyOf, BestN, EveryNSteps, LatestN
from cairn.errors import BackgroundSaveError, ConflictError, NotFoundError, UnsupportedStateError, UsageError


@pytest.mark.parametrize("async_save", [True, False])
def test_policies_decide_what_is_saved_and_kept(tmp_path: Path, async_save: bool) -> None:
    state = make_state()
    losses = {10: 0.9, 20: 0.1, 30: 0.5, 40: 0.7, 50: 0.6}
    with cairn.CheckpointManager(
        tmp_path,
        save_policy=EveryNSteps(10),
        keep_policy=AnyOf(LatestN(2), BestN(1, "loss", "min")),
        async_save=async_save,
    ) as manager:
        for step in range(1, 51):
            train_steps(state, 1)
            saved = manager.save(step, **state, metrics={"loss": losses.get(step, 1.0)})
            assert saved == (step % 10 == 0)
        manager.wait()
        assert manager.steps() == [20, 40, 50]
        assert manager.best_step() == 20
        fresh = make_state(seed=1)
        result = manager.restore("latest", **fresh)
        assert result.step == 50
        assert_same_tensors(state["model"].state_dict(), fresh["model"].state_dict())
        assert manager.restore("best", model=TinyNet()).step == 20
        assert manager.restore(40, model=TinyNet()).metadata["metrics"] == {"loss": 0.7}
        with pytest.raises(NotFoundError):
            manager.restore(30, model=TinyNet())
        with pytest.raises(UsageError):
            manager.restore("first", model=TinyNet())  # type: ignore[arg-type]


def test_async_snapshot_is_isolated_from_later_training(tmp_path: Path) -> None:
    state = make_state()
    manager = cairn.CheckpointManager(tmp_path)
    manager.save(1, **state)
    expected = {k: v.clone() for k, v in state["model"].state_dict().items()}
    train_steps(state, 2)  # mutates parameters in place while the write may still run
    manager.wait()
    assert_same_tensors(expected, cairn.load_state(manager.path(1)))
    manager.save(2, **state)  # reuses the host buffers of the first snapshot
    manager.wait()
    assert_same_tensors(state["model"].state_dict(), cairn.load_state(manager.path(2)))
    assert_same_tensors(expected, cairn.load_state(manager.path(1)))


def test_background_error_surfaces_on_next_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk-full error in the writer thread is raised by the next call, then the manager carries on."""
    import errno

    from cairn.checkpoint import manager as manager_module

    manager = cairn.CheckpointManager(tmp_path)
    manager.save(1, model={"w": np.zeros(3)})
    manager.wait()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manager_module, "write_checkpoint", disk_full)
    assert manager.save(2, model={"w": np.zeros(3)})  # returns at once; the write fails in the background
    with pytest.raises(BackgroundSaveError) as exc:
        manager.save(3, model={"w": np.zeros(3)})
    assert exc.value.step == 2 and "No space left" in exc.value.message
    monkeypatch.undo()
    assert manager.save(3, model={"w": np.ones(3)})
    manager.wait()
    assert manager.steps() == [1, 3]


def test_unsupported_dtype_is_refused_before_returning(tmp_path: Path) -> None:
    manager = cairn.CheckpointManager(tmp_path)
    with pytest.raises(UnsupportedStateError):
        manager.save(1, model={"w": np.array(["text"])})
    manager.wait()
    assert manager.steps() == []


def test_restore_on_empty_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        cairn.CheckpointManager(tmp_path).restore("latest", model=TinyNet())
    with pytest.raises(UsageError):
        cairn.CheckpointManager(tmp_path).best_step()


def test_stale_temporaries_are_cleaned_at_start(tmp_path: Path) -> None:
    (tmp_path / ".tmp-step-0000000005-abcd").mkdir()
    (tmp_path / ".trash-step-0000000001-abcd").mkdir()
    (tmp_path / "step-0000000009").mkdir()  # no manifest: never committed, never picked
    manager = cairn.CheckpointManager(tmp_path)
    assert sorted(p.name for p in manager.removed_stale) == [
        ".tmp-step-0000000005-abcd",
        ".trash-step-0000000001-abcd",
    ]
    assert manager.steps() == []


def test_interpreter_exit_flushes_pending_save(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import numpy as np, cairn
        m = cairn.CheckpointManager({str(tmp_path)!r})
        m.save(7, model={{"w": np.arange(4_000_000, dtype=np.float32)}})
        # no wait(): the process ends right away
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert cairn.CheckpointManager(tmp_path).steps() == [7]
    cairn.verify(tmp_path / "step-0000000007")


def test_duplicate_step_is_a_conflict(tmp_path: Path) -> None:
    manager = cairn.CheckpointManager(tmp_path, async_save=False)
    manager.save(1, model={"w": np.zeros(1)})
    with pytest.raises(ConflictError):
        manager.save(1, model={"w": np.zeros(1)})


def test_cuda_state_when_present(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    model = TinyNet().cuda()
    manager = cairn.CheckpointManager(tmp_path)
    manager.save(1, model=model)
    fresh = TinyNet().cuda()
    manager.restore("latest", model=fresh)
    assert_same_tensors(model.state_dict(), fresh.state_dict())


def test_resume_records_lineage_elapsed_time_and_class(tmp_path: Path) -> None:
    first = cairn.CheckpointManager(tmp_path, async_save=False)
    first.save(1, model=TinyNet())
    meta1 = first.restore("latest", model=TinyNet()).metadata
    assert meta1["class_path"] == f"{TinyNet.__module__}:TinyNet"
    assert meta1["wall_time"]["elapsed_seconds"] >= 0
    second = cairn.CheckpointManager(tmp_path, async_save=False)
    second.restore("latest", model=TinyNet())
    second.save(2, model=TinyNet())
    manifest = second.restore(2, model=TinyNet()).metadata
    assert manifest["lineage"] == {"parent": str(second.path(1).resolve()), "relation": "resume"}
    assert manifest["wall_time"]["elapsed_seconds"] >= meta1["wall_time"]["elapsed_seconds"]


def test_dataset_entries_carry_content_hashes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.txt").write_text("hello")
    (tmp_path / "data/b.txt").write_text("world")
    entry = cairn.dataset(tmp_path / "data", split="train")
    assert entry["name"] == "data" and entry["split"] == "train" and len(entry["sha256"]) == 64
    (tmp_path / "data/b.txt").write_text("World")
    assert cairn.dataset(tmp_path / "data")["sha256"] != entry["sha256"]
    manager = cairn.CheckpointManager(tmp_path / "run", async_save=False)
    manager.save(1, model={"w": np.zeros(1)}, metadata={"datasets": [entry]})
    assert manager.restore(1, model={"w": np.zeros(1)}).metadata["datasets"] == [entry]
