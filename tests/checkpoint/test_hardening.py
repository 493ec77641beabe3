"""Regression tests for defects found in review: each one failed before its fix."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ckpt_helpers import TinyNet, assert_same_tensors

import cairn
from cairn.checkpoint.policies import AnyOf, BestN, LatestN
from cairn.cli.main import main
from cairn.errors import CairnError, ConflictError, FormatError, UsageError
from cairn.format.safetensors import parse_header


def _rehash(ck: Path, rel: str) -> None:
    doc = json.loads((ck / "cairn.json").read_text())
    data = (ck / rel).read_bytes()
    doc["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (ck / "cairn.json").write_text(json.dumps(doc))


def test_a_second_manager_is_read_only_and_leaves_a_save_in_flight_alone(tmp_path: Path) -> None:
    writer = cairn.CheckpointManager(tmp_path)
    in_flight = tmp_path / ".tmp-step-0000000100-0badc0de"
    in_flight.mkdir()
    reader = cairn.CheckpointManager(tmp_path)
    assert writer.writable and not reader.writable
    assert in_flight.exists()
    with pytest.raises(ConflictError, match="read-only"):
        reader.save(1, model={"w": np.zeros(1)})
    code = f"import cairn; print(cairn.CheckpointManager({str(tmp_path)!r}).writable)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and in_flight.exists()
    writer.close()
    assert cairn.CheckpointManager(tmp_path).removed_stale == [in_flight]


def test_keep_policy_never_deletes_the_step_just_written(tmp_path: Path) -> None:
    manager = cairn.CheckpointManager(
        tmp_path, async_save=False, keep_policy=AnyOf(LatestN(2), BestN(1, "loss"))
    )
    for step, loss in [(1, 0.5), (2, 0.1), (4, 0.8), (5, 0.7)]:
        manager.save(step, model={"w": np.zeros(1)}, metrics={"loss": loss})
    manager.save(3, model={"w": np.zeros(1)}, metrics={"loss": 0.9})  # after going back to an earlier step
    assert 3 in manager.steps()


def test_overwrite_refuses_a_directory_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "runs"
    (run / "step-0000000001").mkdir(parents=True)
    (run / "notes.txt").write_text("precious")
    with pytest.raises(UsageError, match="not a checkpoint"):
        cairn.save(run, model={"w": np.zeros(1)}, overwrite=True)
    assert (run / "notes.txt").read_text() == "precious" and (run / "step-0000000001").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_every_directory_of_a_checkpoint_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    cairn.save(tmp_path / "new/ck", model={"w": np.zeros(2)}, extra={"e": {"x": np.ones(1)}})
    assert any(p.endswith("/extra") and "/.tmp-ck-" in p for p in synced)
    assert str(tmp_path) in synced and str(tmp_path / "new") in synced  # new parents are durable too


def test_an_invalid_rng_state_is_found_before_anything_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TinyNet()
    real_state = torch.get_rng_state
    monkeypatch.setattr(torch, "get_rng_state", lambda: real_state()[:-16])
    cairn.save(tmp_path / "ck", model=model)
    monkeypatch.undo()
    target = TinyNet()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    python_state = random.getstate()
    with pytest.raises(FormatError, match="generator"):
        cairn.load(tmp_path / "ck", model=target)
    assert_same_tensors(before, target.state_dict())
    assert random.getstate() == python_state


def test_async_save_is_detached_from_later_changes_to_metadata(tmp_path: Path) -> None:
    manager = cairn.CheckpointManager(tmp_path)
    position = {"epoch": 0, "batch": 17}
    config = {"hidden": 8}
    manager.save(1, model={"w": np.zeros(1)}, metadata={"data_position": position}, config=config)
    position["batch"] = 999
    config["hidden"] = 0
    manager.wait()
    assert manager.restore(1, model={"w": np.zeros(1)}).metadata["data_position"] == {"epoch": 0, "batch": 17}
    assert json.loads((manager.path(1) / "config.json").read_text()) == {"hidden": 8}


def test_a_part_mixing_torch_and_numpy_comes_back_mixed(tmp_path: Path) -> None:
    state = {"perm": np.arange(5), "w": torch.ones(3), "bf": torch.ones(2, dtype=torch.bfloat16)}
    cairn.save(tmp_path / "ck", extra={"mixed": state})
    out = cairn.load_state(tmp_path / "ck", "extra/mixed")
    assert isinstance(out["perm"], np.ndarray) and isinstance(out["w"], torch.Tensor)
    assert out["bf"].dtype == torch.bfloat16
    target: dict[str, Any] = {
        "perm": np.zeros(5, np.int64),
        "w": torch.zeros(3),
        "bf": torch.zeros(2, dtype=torch.bfloat16),
    }
    cairn.load(tmp_path / "ck", extra={"mixed": target})
    assert isinstance(target["w"], torch.Tensor) and isinstance(target["perm"], np.ndarray)


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("optimizer.json", "[" * 100_000 + "]" * 100_000),
        ("optimizer.json", json.dumps({"x": {"__float__": ["nan"]}})),
        ("optimizer.json", json.dumps({"x": {"__numpy__": "<i8", "value": 2**70}})),
        ("cairn.json", None),
    ],
)
def test_malformed_json_gives_typed_errors(tmp_path: Path, rel: str, content: str | None) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    cairn.save(tmp_path / "ck", model=model, optimizer=opt)
    if content is None:
        (tmp_path / "ck/cairn.json").write_text("[" * 100_000 + "]" * 100_000)
    else:
        (tmp_path / "ck" / rel).write_text(content)
        _rehash(tmp_path / "ck", rel)
    with pytest.raises(FormatError):
        cairn.load(tmp_path / "ck", model=model, optimizer=opt)


@pytest.mark.parametrize("shape", [[1] * 65, [2**62, 0], [-1]])
def test_header_shapes_are_bounded(shape: list[int]) -> None:
    header = json.dumps({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
    with pytest.raises(FormatError):
        parse_header(header, data_size=0)


def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(tmp_path: Path) -> None:
    cairn.save(tmp_path / "ck", extra={"x": {"w": np.ones(3)}})
    target = tmp_path / "ck/extra/x.safetensors"
    target.unlink()
    os.mkfifo(target)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            cairn.load_state(tmp_path / "ck", "extra/x")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "load_state blocked on a FIFO"
    assert errors and isinstance(errors[0], CairnError)


def test_non_strict_dict_targets_skip_what_does_not_fit(tmp_path: Path) -> None:
    cairn.save(tmp_path / "ck", extra={"ema": {"w": np.ones(4), "b": np.ones(2)}})
    ema = {"w": np.zeros(3), "b": np.zeros(2)}
    result = cairn.load(tmp_path / "ck", extra={"ema": ema}, strict=False)
    assert [(m.key, m.kind) for m in result.mismatches] == [("w", "shape")]
    assert ema["w"].shape == (3,) and (ema["b"] == 1).all()


def test_async_saves_store_tied_weights_once(tmp_path: Path) -> None:
    manager = cairn.CheckpointManager(tmp_path)
    model = TinyNet(tie=True)
    manager.save(1, model=model)
    manager.wait()
    manifest = cairn.verify(manager.path(1))
    assert manifest.parts["model"].aliases == {"head.weight": "embed.weight"}


def test_conjugate_and_negative_views_save(tmp_path: Path) -> None:
    z = torch.randn(3, dtype=torch.complex64)
    cairn.save(tmp_path / "ck", model={"conj": z.conj(), "neg": torch._neg_view(torch.ones(2))})
    out = cairn.load_state(tmp_path / "ck")
    assert torch.equal(out["conj"], z.conj().resolve_conj()) and torch.equal(out["neg"], -torch.ones(2))


def test_cli_survives_odd_metrics_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cairn.save(tmp_path / "ck", model={"w": np.zeros(2)}, metadata={"notes": "x"})
    doc = json.loads((tmp_path / "ck/cairn.json").read_text())
    doc["metadata"]["metrics"] = [1, 2]
    (tmp_path / "ck/cairn.json").write_text(json.dumps(doc))
    assert main(["ckpt", "ls", str(tmp_path / "ck")]) == 0
    (tmp_path / "ck/model.safetensors").unlink()
    assert main(["ckpt", "show", str(tmp_path / "ck")]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(UsageError, match="metrics"):
        cairn.save(tmp_path / "bad", model={"w": np.zeros(1)}, metadata={"metrics": {"loss": "low"}})
