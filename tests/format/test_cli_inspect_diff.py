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


def test_convert_then_diff_across_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "epoch": 2}, tmp_path / "pytorch_model.bin")
    out = tmp_path / "model.safetensors"
    assert main(["inspect", str(tmp_path / "pytorch_model.bin")]) == 0
    assert "values: epoch=2" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "pytorch_model.bin"), str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tensors"] == 1 and doc["dropped"] == ["epoch"]
    assert main(["diff", str(tmp_path / "pytorch_model.bin"), str(out)]) == 0
    assert "1 identical" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "pytorch_model.bin"), str(out)]) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import subprocess

        return (subprocess.call, ("true",))


def test_convert_refusal_lists_globals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2), "hook": _Payload()}, tmp_path / "evil.bin")
    assert main(["convert", str(tmp_path / "evil.bin"), str(tmp_path / "out.safetensors"), "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    # protocol 2 writes py2 names: subprocess.call is pickled as commands.call
    assert err["code"] == "refused_globals" and "commands.call" in err["refused"]
    assert not (tmp_path / "out.safetensors").exists()


def test_inspect_hf_folder_with_torch_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"lm_head.weight": torch.zeros(5, 2)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["GPT2LMHeadModel"], "n_layer": 2, "n_embd": 2, "vocab_size": 5})
    )
    (tmp_path / "README.md").write_text("# not a weights file\n")
    assert main(["inspect", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "directory" and doc["parameters"] == 10
    assert doc["config"] == {
        "architectures": ["GPT2LMHeadModel"],
        "num_layers": 2,
        "hidden_size": 2,
        "vocab_size": 5,
    }


def test_diff_strip_prefix_matches_nested_torch_against_flat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    w = torch.arange(6.0).reshape(2, 3)
    torch.save({"state_dict": {"layer.weight": w}}, tmp_path / "ckpt.pt")
    save_file({"layer.weight": w.numpy()}, tmp_path / "model.safetensors")
    assert main(["diff", str(tmp_path / "ckpt.pt"), str(tmp_path / "model.safetensors")]) == 1
    capsys.readouterr()
    args = ["diff", str(tmp_path / "ckpt.pt"), str(tmp_path / "model.safetensors"), "--strip", "state_dict."]
    assert main(args) == 0
    assert "1 identical" in capsys.readouterr().out


def test_inspect_plain_pickle_shows_globals_and_structure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pickle
    from collections import Counter

    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"counts": Counter("aab"), "n": 3}, protocol=4))
    assert main(["inspect", str(tmp_path / "model.pkl")]) == 0
    out = capsys.readouterr().out
    assert "globals: collections.Counter" in out and '"n": 3' in out
