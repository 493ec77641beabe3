"""No false alarms: ordinary checkpoints, arrays and archives of them scan clean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from security_corpus import build_benign

from cairn.security import Severity, scan

pytest.importorskip("torch")
pytest.importorskip("joblib")


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("benign")
    build_benign(folder)
    return folder


def test_ordinary_checkpoints_scan_clean(benign: Path) -> None:
    report = scan([benign])
    # TorchScript archives carry code that torch.jit.load compiles: noted (low), never a failure
    notes = [(Path(f.path).name, f.rule, f.severity) for f in report.findings]
    assert notes == [("scripted.pt", "torchscript-code", Severity.LOW)], notes
    assert report.errors == ()
    assert report.exit_status() == 0
    assert [Path(s.path).name for s in report.skipped] == ["README.md"]
    scanned = {Path(p.split("#")[0]).name for p in report.scanned}
    assert {
        "mlp_whole.pt",
        "rnn_legacy.bin",
        "train_adam.ckpt",
        "model.safetensors",
        "model.joblib",
    } <= scanned


def test_safetensors_scan_does_not_read_tensor_bytes(tmp_path: Path) -> None:
    # the check reads the header only: a huge declared buffer of zeros costs nothing
    path = tmp_path / "big.safetensors"
    save_file({"w": np.zeros((1024, 1024), dtype=np.float32)}, str(path))
    assert scan([path]).exit_status() == 0


def test_transformers_checkpoints_scan_clean(tmp_path: Path) -> None:
    """What transformers writes raises nothing: `save_pretrained` (safetensors) and the `pytorch_model.bin`
    that transformers 4 wrote with `torch.save(model.state_dict())` (transformers 5 writes only safetensors)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    (tmp_path / "bin").mkdir()
    torch.save(model.state_dict(), tmp_path / "bin/pytorch_model.bin")
    model.save_pretrained(tmp_path / "st")
    torch.save({"model": model.state_dict(), "step": 3}, tmp_path / "trainer_checkpoint.pt")
    report = scan([tmp_path])
    assert report.findings == () and report.errors == ()
    scanned = {Path(p.split("#")[0]).name for p in report.scanned}
    assert {"pytorch_model.bin", "model.safetensors", "trainer_checkpoint.pt"} <= scanned
