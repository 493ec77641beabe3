"""PyTorch zip and legacy checkpoints read by opcode walk, converted to safetensors; hostile variants."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cairn.errors import ConflictError, FormatError, UnsafeContentError
from cairn.format.arrays import to_array
from cairn.format.convert import RefusedGlobalsError, convert_to_safetensors
from cairn.format.reader import inspect_path


def _checkpoint() -> dict[str, object]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    return {
        "state_dict": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": 7,
        "view": torch.arange(20, dtype=torch.int32)[3:15:3],  # strided, offset into a shared storage
        "transposed": torch.arange(6, dtype=torch.float64).reshape(2, 3).t(),
        "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "param": torch.nn.Parameter(torch.ones(2, 2)),
        "empty": torch.zeros(0, 3),
        "empty_t": torch.zeros(0, 3).t(),  # non-contiguous and empty
    }


def _flat(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            out |= _flat(v, f"{prefix}.{i}" if prefix else str(i))
    return out


@pytest.fixture(params=["zip", "legacy"])
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "pytorch_model.bin"
    torch.save(_checkpoint(), path, _use_new_zipfile_serialization=request.param == "zip")
    return path


def test_tensors_names_shapes_and_values_match_torch_load(saved: Path) -> None:
    info = inspect_path(saved)
    assert info.format in ("torch-zip", "torch-legacy")
    expected = _flat(torch.load(saved, weights_only=True))
    got = info.tensor_map()
    assert set(got) == set(expected)
    for name, t in expected.items():
        rec = got[name]
        assert rec.shape == tuple(t.shape), name
        raw = to_array(rec)
        t = t.detach().contiguous()
        want = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        np.testing.assert_array_equal(raw.view(np.int16) if rec.dtype == "BF16" else raw, want.numpy())
    assert info.tensor_map()["view"].storage_offset == 3
    assert "torch._utils._rebuild_tensor_v2" in info.globals
    assert isinstance(info.structure, dict) and info.structure["step"] == 7
    assert info.structure["state_dict"]["0.weight"] == "tensor F32[3, 4]"


def test_convert_is_bit_identical_to_torch_load(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    result = convert_to_safetensors(saved, out)
    expected = _flat(torch.load(saved, weights_only=True))
    converted = load_file(str(out))
    assert set(converted) == set(expected) and result.tensors == len(expected)
    for name, t in expected.items():
        assert converted[name].dtype == t.dtype and converted[name].shape == t.shape
        assert torch.equal(converted[name], t), name
    assert "step" in result.dropped
    with pytest.raises(ConflictError):
        convert_to_safetensors(saved, out)
    convert_to_safetensors(saved, out, overwrite=True)


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_convert_refuses_foreign_globals_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "x": Evil()}, path)
    out = tmp_path / "out.safetensors"
    with pytest.raises(RefusedGlobalsError) as exc:
        convert_to_safetensors(path, out)
    assert isinstance(exc.value, UnsafeContentError)
    assert any(g.endswith("system") for g in exc.value.refused)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    info = inspect_path(path)  # inspecting it is fine: nothing runs
    assert any(g.endswith(".system") for g in info.globals)
    assert [t.name for t in info.tensors] == ["w"]


def test_generic_pickle_lists_globals_without_loading(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"estimator": Evil(), "n": [1, 2, 3]}))
    info = inspect_path(path)
    assert info.format == "pickle" and not info.tensors
    assert any(g.endswith("system") for g in info.globals)
    assert info.structure["n"] == [1, 2, 3]


def _rezip(src: Path, dst: Path, edit: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, edit.get(item.filename.split("/", 1)[1], zin.read(item)))


def _pkl(src: Path) -> bytes:
    with zipfile.ZipFile(src) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))


def test_hostile_torch_zips(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(4)}, good)
    data_pkl = _pkl(good)
    cases = {
        "truncated pickle": {"data.pkl": data_pkl[: len(data_pkl) // 2]},
        "storage shorter than the view": {"data/0": b"\0" * 8},
        "lying shape": {"data.pkl": data_pkl.replace(b"K\x04\x85", b"K\x40\x85", 1)},
        "missing storage member": {
            "data.pkl": data_pkl.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x009", 1)
        },
    }
    for label, edit in cases.items():
        bad = tmp_path / f"bad-{len(label)}.pt"
        _rezip(good, bad, edit)
        with pytest.raises(FormatError):
            info = inspect_path(bad)
            for t in info.tensors:
                to_array(t)
            pytest.fail(label)


def test_truncated_zip_and_legacy_files(tmp_path: Path) -> None:
    for zip_format in (True, False):
        path = tmp_path / "m.pt"
        torch.save({"w": torch.ones(1000)}, path, _use_new_zipfile_serialization=zip_format)
        data = path.read_bytes()
        for cut in (len(data) // 3, len(data) - 100):
            path.write_bytes(data[:cut])
            with pytest.raises(FormatError):
                inspect_path(path)


def test_legacy_storage_count_larger_than_file(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    torch.save({"w": torch.ones(4)}, path, _use_new_zipfile_serialization=False)
    data = bytearray(path.read_bytes())
    count_at = len(data) - 16 - 8
    data[count_at : count_at + 8] = (1 << 60).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="runs past the end"):
        inspect_path(path)


def test_deeply_nested_pickle_is_a_limit_error_or_warning(tmp_path: Path) -> None:
    path = tmp_path / "deep.pkl"
    path.write_bytes(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".")
    info = inspect_path(path)
    assert info.warnings  # the nesting limit is reported, nothing crashes


def test_v3_dtypes_and_meta_tensors(tmp_path: Path) -> None:
    odd = {
        "f8": torch.tensor([0.5, -1.0, 2.0]).to(torch.float8_e4m3fn),
        "u16": torch.tensor([1, 65535], dtype=torch.uint16),
        "c64": torch.tensor([1 + 2j], dtype=torch.complex64),
    }
    torch.save({**odd, "meta": torch.empty(2, 3, device="meta")}, tmp_path / "odd.pt")
    info = inspect_path(tmp_path / "odd.pt")
    got = info.tensor_map()
    assert {n: r.dtype for n, r in got.items()} == {
        "f8": "F8_E4M3",
        "u16": "U16",
        "c64": "C64",
        "meta": "F32",
    }
    assert got["meta"].offset is None and got["meta"].shape == (2, 3)
    assert "torch._utils._rebuild_tensor_v3" in info.globals
    with pytest.raises(RefusedGlobalsError, match="meta"):  # no data to convert
        convert_to_safetensors(tmp_path / "odd.pt", tmp_path / "odd.safetensors")
    torch.save(odd, tmp_path / "plain.pt")
    convert_to_safetensors(tmp_path / "plain.pt", tmp_path / "plain.safetensors")
    converted = load_file(str(tmp_path / "plain.safetensors"))
    for name, t in odd.items():
        assert converted[name].dtype == t.dtype
        assert torch.equal(converted[name].view(torch.uint8), t.view(torch.uint8)), name


def test_sharded_torch_bins_with_an_index(tmp_path: Path) -> None:
    import json

    torch.save({"a.weight": torch.ones(2, 2)}, tmp_path / "pytorch_model-00001-of-00002.bin")
    torch.save({"b.weight": torch.zeros(3)}, tmp_path / "pytorch_model-00002-of-00002.bin")
    weight_map = {
        "a.weight": "pytorch_model-00001-of-00002.bin",
        "b.weight": "pytorch_model-00002-of-00002.bin",
    }
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    info = inspect_path(tmp_path)
    assert sorted(info.tensor_map()) == ["a.weight", "b.weight"]
    assert inspect_path(tmp_path / "pytorch_model.bin.index.json").format == "torch-zip-sharded"
    np.testing.assert_array_equal(to_array(info.tensor_map()["a.weight"]), np.ones((2, 2), np.float32))


def test_diff_of_a_strided_view_against_a_contiguous_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import save_file

    from cairn.format import arrays
    from cairn.format.diff import diff_inspections

    monkeypatch.setattr(arrays, "CHUNK_ELEMENTS", 7)  # rows of the view and flat chunks never line up
    t = torch.arange(60, dtype=torch.float32).reshape(6, 10).t()  # non-contiguous (10, 6)
    torch.save({"w": t}, tmp_path / "a.pt")
    save_file({"w": t.contiguous()}, str(tmp_path / "same.safetensors"))
    save_file({"w": t.contiguous() + 1}, str(tmp_path / "plus1.safetensors"))
    a = inspect_path(tmp_path / "a.pt")
    assert not a.tensors[0].contiguous
    assert diff_inspections(a, inspect_path(tmp_path / "same.safetensors")).identical
    (change,) = diff_inspections(a, inspect_path(tmp_path / "plus1.safetensors")).changes
    assert change.kind == "changed" and change.max_abs == 1.0
    expected = float(torch.linalg.norm(torch.ones(60)) / torch.linalg.norm(t.double()))
    assert change.rel_l2 == pytest.approx(expected)
