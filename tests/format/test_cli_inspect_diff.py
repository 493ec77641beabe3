"""The inspect and diff commands end to end: output, JSON shape and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cairn.cli.main import main


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"encoder.layer.weight": w, "encoder.layer.bias": np.zeros(3, np.float32)}, tmp_path / "a.st")
    save_file(
        {"encoder.layer.weight": w * 2, "encoder.layer.bias": np.zeros(3, np.float32)}, tmp_path / "b.st"
    )
    return tmp_path / "a.st", tmp_path / "b.st"


def test_inspect_json_tree_and_totals(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(pair[0]), "--json", "--tree"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "safetensors" and doc["parameters"] == 9
    assert doc["totals_by_dtype"] == {"F32": {"tensors": 2, "parameters": 9, "nbytes": 36}}
    assert doc["tree"]["encoder"]["layer"]["weight"] == "F32[2, 3]"
    assert doc["tree"]["encoder"]["#parameters"] == 9


def test_inspect_human_output(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(pair[0])]) == 0
    out = capsys.readouterr().out
    assert "safetensors, 2 tensors, 9 parameters" in out and "encoder.layer.weight" in out


def test_inspect_stats_flags_nan_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_file({"ok": np.ones(3, np.float32), "bad": np.array([1, np.nan], np.float32)}, tmp_path / "x.st")
    assert main(["inspect", "--stats", "--json", str(tmp_path / "x.st")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["flagged"] == ["bad"]
    assert main(["inspect", "--stats", str(tmp_path / "x.st")]) == 1
    assert "1 tensors hold NaN or Inf" in capsys.readouterr().out


def test_diff_exit_statuses(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    assert main(["diff", str(a), str(a)]) == 0
    assert main(["diff", str(a), str(b), "--json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{\n") :])
    assert doc["identical"] is False
    assert [c["name"] for c in doc["changes"] if c["kind"] == "changed"] == ["encoder.layer.weight"]


def test_errors_exit_2_with_json_error_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk").write_bytes(b"\x00\x01 not a checkpoint at all")
    assert main(["inspect", str(tmp_path / "junk"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "unsupported_format"
    assert main(["diff", str(tmp_path / "missing"), str(tmp_path / "junk")]) == 2
    assert "no such file" in capsys.readouterr().err
