"""`cairn ckpt ls|show|verify`: human and --json output, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import cairn
from cairn.cli.main import main


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    manager = cairn.CheckpointManager(tmp_path / "run", async_save=False)
    for step in (100, 200):
        manager.save(step, model={"w": np.full((4, 4), step, np.float32)}, metrics={"loss": 1 / step})
    return tmp_path / "run"


def test_ls_lists_steps_with_metrics(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ckpt", "ls", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "100" in out and "200" in out and "loss=0.005" in out
    assert main(["ckpt", "ls", str(run_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in rows] == [100, 200]
    assert rows[1]["metrics"] == {"loss": 0.005}


def test_ls_does_not_touch_a_running_save(run_dir: Path) -> None:
    (run_dir / ".tmp-step-0000000300-ab12").mkdir()
    assert main(["ckpt", "ls", str(run_dir)]) == 0
    assert (run_dir / ".tmp-step-0000000300-ab12").exists()


def test_show_lists_parts_tensors_and_metadata(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck = run_dir / "step-0000000200"
    assert main(["ckpt", "show", str(ck), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parts"]["model"]["tensors"] == [
        {"name": "w", "dtype": "F32", "shape": [4, 4], "file": "model.safetensors"}
    ]
    assert data["parts"]["model"]["parameters"] == 16
    assert data["metadata"]["step"] == 200
    assert main(["ckpt", "show", str(ck)]) == 0
    assert "[model]" in capsys.readouterr().out


def test_verify_exit_statuses(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck = run_dir / "step-0000000100"
    assert main(["ckpt", "verify", str(ck)]) == 0
    assert "ok:" in capsys.readouterr().out
    data = bytearray((ck / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (ck / "model.safetensors").write_bytes(bytes(data))
    assert main(["ckpt", "verify", str(ck), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "integrity"
    assert "model.safetensors" in captured.err
    assert main(["ckpt", "verify", str(run_dir / "nope")]) == 2
