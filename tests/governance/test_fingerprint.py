"""Lineage fingerprints: a fine-tune, a LoRA-merged model, quantized copies and an unrelated model told apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gov_fixtures import MakeModel

from cairn.cli.main import main
from cairn.errors import CairnError, FormatError, NotFoundError, UnsupportedFormatError
from cairn.format.safetensors import write_safetensors
from cairn.governance.fingerprint import (
    Fingerprint,
    StreamingFingerprint,
    arch_key,
    compare,
    fingerprint_blob,
    fingerprint_file,
    fingerprint_model,
)

Weights = dict[str, np.ndarray]


def init(seed: int) -> Weights:
    rng = np.random.default_rng(seed)
    w: Weights = {"embed.weight": rng.normal(0, 0.02, (256, 64)).astype(np.float32)}
    for i in range(2):
        for proj in ("q", "k", "v", "o"):
            w[f"layers.{i}.attn.{proj}.weight"] = rng.normal(0, 0.02, (64, 64)).astype(np.float32)
        w[f"layers.{i}.mlp.up.weight"] = rng.normal(0, 0.02, (256, 64)).astype(np.float32)
        w[f"layers.{i}.mlp.down.weight"] = rng.normal(0, 0.02, (64, 256)).astype(np.float32)
        w[f"layers.{i}.norm.weight"] = np.ones(64, np.float32)
        w[f"layers.{i}.norm.bias"] = np.zeros(64, np.float32)
    return w


def save(directory: Path, weights: Weights, dtype: str = "F32") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    conv = {"F32": np.float32, "F16": np.float16}
    items = []
    for name, arr in weights.items():
        if dtype == "BF16":
            raw = (np.ascontiguousarray(arr, np.float32).view(np.uint32) >> 16).astype(np.uint16)
        else:
            raw = np.ascontiguousarray(arr.astype(conv[dtype]))
        items.append((name, dtype, tuple(arr.shape), memoryview(raw.tobytes())))
    with (directory / "model.safetensors").open("wb") as f:
        write_safetensors(f, items)
    return directory


@pytest.fixture
def family(tmp_path: Path) -> dict[str, Path]:
    base = init(0)
    rng = np.random.default_rng(1)
    finetune = {k: v + rng.normal(0, 0.002, v.shape).astype(np.float32) for k, v in base.items()}
    lora = dict(base)
    for i in range(2):
        for proj in ("q", "v"):
            a, b = rng.normal(0, 0.02, (4, 64)), rng.normal(0, 0.02, (64, 4))
            lora[f"layers.{i}.attn.{proj}.weight"] = (
                base[f"layers.{i}.attn.{proj}.weight"] + 0.5 * b @ a
            ).astype(np.float32)
    return {
        "base": save(tmp_path / "base", base),
        "finetune": save(tmp_path / "finetune", finetune),
        "lora-merged": save(tmp_path / "lora-merged", lora),
        "fp16": save(tmp_path / "fp16", base, "F16"),
        "bf16": save(tmp_path / "bf16", base, "BF16"),
        "unrelated": save(tmp_path / "unrelated", init(7)),
    }


def test_the_four_kinds_of_relative_are_told_apart(family: dict[str, Path]) -> None:
    base = fingerprint_model(family["base"])
    verdicts = {name: compare(fingerprint_model(path), base).verdict for name, path in family.items()}
    assert verdicts == {
        "base": "copy",
        "finetune": "finetune",
        "lora-merged": "partial-update",
        "fp16": "quantized",
        "bf16": "quantized",
        "unrelated": "unrelated",
    }
    unrelated = compare(fingerprint_model(family["unrelated"]), base)
    assert unrelated.shared == 1.0 and unrelated.similarity < 0.3 and not unrelated.supports_lineage
    lora = compare(fingerprint_model(family["lora-merged"]), base)
    assert 0.2 < lora.identical < 0.9 and lora.similarity > 0.9


def test_different_architecture_shares_nothing(family: dict[str, Path], tmp_path: Path) -> None:
    other = save(tmp_path / "other", {"w": np.ones((3, 3), np.float32)})
    assert compare(fingerprint_model(other), fingerprint_model(family["base"])).verdict == "unrelated"


def test_fingerprint_is_small_and_round_trips_through_json(family: dict[str, Path]) -> None:
    fp = fingerprint_file(family["base"] / "model.safetensors")
    data = json.loads(json.dumps(fp.to_dict()))
    assert Fingerprint.from_dict(data) == fp
    assert all(len(t.sketch) == 64 for t in fp.tensors.values())
    with pytest.raises(FormatError):
        Fingerprint.from_dict({"t": {"dtype": "F32"}})


def test_legacy_torch_pickles_are_not_supported_and_never_loaded(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "pytorch_model.bin").write_bytes(f"\x80\x02cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(UnsupportedFormatError, match="not legacy ones"):
        fingerprint_model(tmp_path)
    with pytest.raises(UnsupportedFormatError):
        fingerprint_file(tmp_path / "pytorch_model.bin")
    assert fingerprint_blob(tmp_path / "pytorch_model.bin") is None
    with pytest.raises(NotFoundError):
        fingerprint_model(tmp_path / "nope")
    assert not marker.exists()


def test_hostile_torch_zip_is_walked_not_executed(tmp_path: Path) -> None:
    import zipfile

    marker = tmp_path / "pwned"
    with zipfile.ZipFile(tmp_path / "evil.bin", "w") as zf:
        zf.writestr("archive/data.pkl", f"\x80\x02cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(CairnError):
        fingerprint_file(tmp_path / "evil.bin")
    assert fingerprint_blob(tmp_path / "evil.bin") is None
    assert not marker.exists()


def test_torch_zip_fingerprint_matches_its_safetensors_twin(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    base = torch.randn(32, 16)
    sd = {
        "w": base,
        "v": base[10:20],  # a view at a storage offset into the same storage
        "b": torch.randn(16).to(torch.bfloat16),
        "t": torch.randn(8, 8).t(),  # a non-contiguous view: hashed in C order like its safetensors copy
    }
    torch.save(sd, tmp_path / "pytorch_model.bin")
    save_file({k: v.contiguous().clone() for k, v in sd.items()}, tmp_path / "model.safetensors")
    a, b = fingerprint_file(tmp_path / "pytorch_model.bin"), fingerprint_file(tmp_path / "model.safetensors")
    assert a == b and compare(a, b).verdict == "copy"
    assert fingerprint_blob(tmp_path / "pytorch_model.bin") == a
    assert fingerprint_blob(tmp_path / "model.safetensors") == b
    assert arch_key(a) == arch_key(b)
    (tmp_path / "model.safetensors").unlink()
    assert fingerprint_model(tmp_path) == a  # a directory of torch weights only


def test_truncated_and_hostile_safetensors_give_typed_errors(family: dict[str, Path], tmp_path: Path) -> None:
    raw = (family["base"] / "model.safetensors").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError):
        fingerprint_model(bad)
    (bad / "model.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(FormatError):
        fingerprint_model(bad)


def test_lineage_cli_supports_refutes_and_finds_undeclared_parents(
    family: dict[str, Path], make_model: MakeModel, capsys: pytest.CaptureFixture[str]
) -> None:
    root = family["base"].parent
    (family["finetune"] / "README.md").write_text("---\nlicense: mit\nbase_model: base\n---\n")
    assert main(["lineage", str(family["finetune"]), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["declared"][0]["verdict"] == "finetune" and data["declared"][0]["supported"] is True
    (family["unrelated"] / "README.md").write_text("---\nlicense: mit\nbase_model: base\n---\n")
    assert main(["lineage", str(family["unrelated"]), "--json", "--candidates", str(root)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["declared"][0]["supported"] is False and data["undeclared"] == []
    (family["lora-merged"] / "README.md").write_text("# no card metadata\n")
    assert main(["lineage", str(family["lora-merged"]), "--candidates", str(root), "--json"]) == 0
    found = {Path(u["path"]).name for u in json.loads(capsys.readouterr().out)["undeclared"]}
    assert found == {"base", "finetune", "fp16", "bf16"}
    (family["fp16"] / "README.md").write_text("---\nbase_model: gone\n---\n")
    assert main(["lineage", str(family["fp16"])]) == 2
    assert "cannot be found" in capsys.readouterr().out


def test_streaming_fingerprint_equals_the_file_one_for_any_chunking(tmp_path: Path) -> None:
    import random

    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    data = save(
        {
            "a": rng.standard_normal((33, 17)).astype(np.float32),
            "b": rng.standard_normal(5).astype(np.float16),
            "empty": np.zeros((0, 3), np.float32),
            "c": rng.standard_normal(200),
            "d": np.arange(7, dtype=np.int8),
        }
    )
    (tmp_path / "m.safetensors").write_bytes(data)
    expected = fingerprint_file(tmp_path / "m.safetensors")
    pick = random.Random(1)
    for _ in range(200):
        stream, i = StreamingFingerprint(len(data)), 0
        while i < len(data):
            k = pick.choice([1, 2, 3, 5, 7, 64, 1000, len(data)])
            stream.update(data[i : i + k])
            i += k
        assert stream.result() == expected
    cut = StreamingFingerprint(len(data))
    cut.update(data[:-1])
    assert cut.result() is None  # the last tensor never finished
    for junk in (b"hello", b"\xff" * 8 + data[8:], b"PK\x03\x04" + bytes(60)):
        s = StreamingFingerprint(len(junk))
        s.update(junk)
        assert s.result() is None
