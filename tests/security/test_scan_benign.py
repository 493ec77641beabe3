"""No false alarms: ordinary checkpoints, arrays and archives of them scan clean."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cairn.security import scan

torch = pytest.importorskip("torch")


def _models() -> dict[str, object]:
    torch.manual_seed(0)
    return {
        "mlp": torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2)
        ),
        "cnn": torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        ),
        "rnn": torch.nn.LSTM(4, 8, num_layers=2, batch_first=True),
        "transformer": torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2
        ),
        "embedding": torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.LayerNorm(4)),
    }


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("benign")
    for name, model in _models().items():
        assert isinstance(model, torch.nn.Module)
        torch.save(model.state_dict(), folder / f"{name}_state.pt")
        torch.save(model, folder / f"{name}_whole.pt")
        torch.save(model.state_dict(), folder / f"{name}_legacy.bin", _use_new_zipfile_serialization=False)
    model = _models()["mlp"]
    assert isinstance(model, torch.nn.Module)
    for opt_name, opt in {
        "adam": torch.optim.AdamW(model.parameters(), lr=1e-3),
        "sgd": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    }.items():
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
        sched = torch.optim.lr_scheduler.StepLR(opt, 10)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": 3,
                "rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
                "generator": np.random.default_rng(0).bit_generator.state,
                "meta": {
                    "loss": 0.25,
                    "tags": ("a", "b"),
                    "dtype": torch.float16,
                    "device": torch.device("cpu"),
                },
            },
            folder / f"train_{opt_name}.ckpt",
        )
    # a transformers-style checkpoint: pytorch_model.bin with the usual dotted parameter names
    sd = {f"encoder.layer.{i}.attention.self.query.weight": torch.randn(4, 4) for i in range(3)}
    sd["embeddings.position_ids"] = torch.arange(8).unsqueeze(0)
    sd["half"] = torch.randn(2).to(torch.bfloat16)
    torch.save(sd, folder / "pytorch_model.bin")
    np.save(folder / "array.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez_compressed(folder / "arrays.npz", a=np.ones(3), b=np.zeros((2, 2), dtype=np.int8))
    with open(folder / "plain.pkl", "wb") as fh:
        pickle.dump(
            {"weights": np.ones(3), "names": ["a", "b"], "set": {1, 2}, "bytes": b"\x00\x01"}, fh, protocol=4
        )
    save_file(
        {"w": np.ones((2, 3), dtype=np.float32)}, str(folder / "model.safetensors"), metadata={"format": "pt"}
    )
    joblib = pytest.importorskip("joblib")
    joblib.dump({"coef": np.arange(100.0), "names": np.array(["x", "y"]), "n": 3}, folder / "model.joblib")
    joblib.dump({"coef": np.arange(100.0)}, folder / "model_compressed.joblib", compress=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(folder / "mlp_state.pt", "checkpoints/mlp_state.pt")
    (folder / "bundle.zip").write_bytes(buf.getvalue())
    with tarfile.open(folder / "bundle.tar.gz", "w:gz") as tf:
        tf.add(folder / "cnn_whole.pt", "cnn_whole.pt")
        tf.add(folder / "array.npy", "nested/array.npy")
    (folder / "README.md").write_text("# a model\n")
    return folder


def test_ordinary_checkpoints_scan_clean(benign: Path) -> None:
    report = scan([benign])
    assert report.findings == (), [(f.path, f.member, f.rule, f.construct) for f in report.findings]
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
