"""``convert`` across every torch format the readers understand: zip, legacy non-zip and pre-1.0 tar.

Converted tensors must be bit-identical to what torch loads (``weights_only=True`` for zip and legacy;
torch refuses ``weights_only`` for tar files, so those fixtures, built here and therefore trusted, are
loaded with its legacy loader). Hostile files give a typed error and leave neither target nor temp file.
"""

from __future__ import annotations

import struct
import tarfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_torch_tar import _dumps, _Ref, _TorchName, build

from cairn.cli.main import main
from cairn.errors import CairnError, FormatError
from cairn.format.convert import RefusedGlobalsError, convert_to_safetensors


def _same_bits(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, name
    assert torch.equal(got.contiguous().view(torch.uint8), want.contiguous().view(torch.uint8)), name


def _flat(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _every_dtype() -> dict[str, object]:
    base = torch.arange(24, dtype=torch.float32) * 0.37
    wide = torch.tensor([1e300, -2.5e-310, 0.0, -0.0], dtype=torch.float64)
    bf = torch.tensor([1.5, 3.0e38, -0.0, 1e-40, float("inf"), float("nan")], dtype=torch.bfloat16)
    return {
        "state_dict": OrderedDict(
            weight=base.reshape(4, 6),  # these four share one storage
            weight_t=base.reshape(4, 6).t(),
            window=base[5:17:3],  # a strided view at a storage offset
            tail=base[18:],  # a contiguous view at a storage offset
            param=torch.nn.Parameter(torch.ones(2, 3)),
        ),
        "f64": wide,
        "f16": torch.tensor([65504.0, -6e-8, 1.0, float("-inf")], dtype=torch.float16),
        "bf16": bf,
        "bf16_view": bf[2:],  # shares bf16's storage
        "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
        "i16": torch.tensor([-32768, 7], dtype=torch.int16),
        "i32": torch.arange(10, dtype=torch.int32).reshape(2, 5)[:, 1:4],
        "i64": torch.tensor([2**62, -(2**63)]),
        "u8": torch.tensor([255, 0, 3], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "epoch": 4,
    }


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_zip_and_legacy_convert_bit_identical_for_every_dtype(tmp_path: Path, zip_format: bool) -> None:
    src, out = tmp_path / "model.pt", tmp_path / "model.safetensors"
    torch.save(_every_dtype(), src, _use_new_zipfile_serialization=zip_format)
    want = _flat(torch.load(src, weights_only=True))
    result = convert_to_safetensors(src, out)
    got = load_file(str(out))
    assert set(got) == set(want) and result.tensors == len(want) and result.dropped == ("epoch",)
    for name, t in want.items():
        _same_bits(got[name], t, name)


def _tar_fixture(path: Path) -> None:
    """A pre-1.0 tar with six storage types, views sharing storages, and a storage view."""
    f32 = np.arange(12, dtype=np.float32) * 0.5
    half = np.array([65504.0, -6e-8, 1.0, -0.0], dtype=np.float16)
    bf16 = np.array([0x3FC0, 0x7F7F, 0x8000, 0x0001, 0xFFC1], dtype=np.uint16)  # raw bfloat16 bits
    i8 = np.array([-128, 127, 5], dtype=np.int8)
    i32 = np.arange(-4, 6, dtype=np.int32)
    flags = np.array([1, 0, 1], dtype=np.uint8)
    build(
        path,
        {1: f32, 2: half, 3: bf16, 4: i8, 5: i32, 6: flags},
        {
            11: (1, (3, 4), (4, 1), 0),
            12: (1, (4, 3), (1, 4), 0),  # the transpose, same storage
            13: (1, (2, 2), (3, 1), 5),  # strided, at a storage offset
            14: (7, (3,), (2,), 1),  # through storage view 7 = f32[2:9]
            21: (2, (4,), (1,), 0),
            31: (3, (3,), (1,), 2),
            41: (4, (3,), (1,), 0),
            51: (5, (2, 2), (5, 2), 1),
            61: (6, (3,), (1,), 0),
        },
        OrderedDict(
            state_dict=OrderedDict(weight=_Ref(11), weight_t=_Ref(12), block=_Ref(13), viewed=_Ref(14)),
            half=_Ref(21),
            bf16=_Ref(31),
            i8=_Ref(41),
            i32=_Ref(51),
            flags=_Ref(61),
            epoch=2,
        ),
        views=[(7, 1, 2, 7)],
        types={2: "HalfStorage", 3: "BFloat16Storage", 4: "CharStorage", 5: "IntStorage", 6: "BoolStorage"},
    )


def test_a_pre_1_0_tar_converts_bit_identical_to_torchs_loader(tmp_path: Path) -> None:
    src, out = tmp_path / "old.pt", tmp_path / "old.safetensors"
    _tar_fixture(src)
    with pytest.raises(RuntimeError, match="weights_only"):  # why this test uses the unsafe loader
        torch.load(src, weights_only=True)
    want = _flat(torch.load(src, weights_only=False))  # built above: trusted
    result = convert_to_safetensors(src, out)
    got = load_file(str(out))
    assert set(got) == set(want) and result.tensors == 9 and result.dropped == ("epoch",)
    assert {t.dtype for t in got.values()} >= {torch.float16, torch.bfloat16, torch.int8, torch.bool}
    for name, t in want.items():
        _same_bits(got[name], t, name)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "safetensors" in p.name)


def _truncate(path: Path, keep: float) -> None:
    """Keep the first ``keep`` of the file's content (a tar's zero padding after its last member does
    not count: cutting only padding leaves a valid archive)."""
    data = path.read_bytes()
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            data = data[: max(i.offset_data + i.size for i in tar.getmembers())]
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("fmt", ["zip", "legacy", "tar"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.97])
def test_truncated_files_are_format_errors_and_leave_nothing(tmp_path: Path, fmt: str, keep: float) -> None:
    src, out = tmp_path / "m.pt", tmp_path / "m.safetensors"
    if fmt == "tar":
        _tar_fixture(src)
    else:
        torch.save(_every_dtype(), src, _use_new_zipfile_serialization=fmt == "zip")
    _truncate(src, keep)
    with pytest.raises(FormatError):
        convert_to_safetensors(src, out)
    assert _leftovers(tmp_path) == []


def test_a_failed_forced_convert_keeps_the_old_target(tmp_path: Path) -> None:
    src, out = tmp_path / "m.pt", tmp_path / "m.safetensors"
    out.write_bytes(b"previous")
    _tar_fixture(src)
    _truncate(src, 0.8)
    with pytest.raises(CairnError):
        convert_to_safetensors(src, out, overwrite=True)
    assert out.read_bytes() == b"previous" and _leftovers(tmp_path) == ["m.safetensors"]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def test_legacy_file_with_a_foreign_global_is_refused(tmp_path: Path) -> None:
    src, out = tmp_path / "evil.pt", tmp_path / "evil.safetensors"
    torch.save({"w": torch.ones(2), "x": _Evil()}, src, _use_new_zipfile_serialization=False)
    with pytest.raises(RefusedGlobalsError) as exc:
        convert_to_safetensors(src, out)
    assert [g.rsplit(".", 1)[1] for g in exc.value.refused] == ["system"]
    assert _leftovers(tmp_path) == []


# one tensor header naming pickle.loads as its type, then ndim 1, padding, size 4, stride 1, offset 0
_ODD_TENSOR = _dumps(1) + _dumps((11, 1, _TorchName("loads", "pickle"))) + struct.pack("<i4xqqq", 1, 4, 1, 0)


@pytest.mark.parametrize(
    ("tree", "patch", "refused"),
    [
        ({"w": _Ref(11), "x": _TorchName("system", "os")}, {}, ["os.system"]),  # in the object tree
        ({"w": _Ref(11)}, {"sys_info": _dumps({"little_endian": _TorchName("load")})}, ["torch.load"]),
        ({"w": _Ref(11)}, {"tensors": _ODD_TENSOR}, ["pickle.loads"]),  # a tensor header's type
    ],
)
def test_tar_with_a_foreign_global_anywhere_is_refused(
    tmp_path: Path, tree: object, patch: dict[str, bytes], refused: list[str]
) -> None:
    src, out = tmp_path / "evil.pt", tmp_path / "evil.safetensors"
    build(src, {1: np.ones(4, dtype=np.float32)}, {11: (1, (4,), (1,), 0)}, tree, patch=patch)
    with pytest.raises(RefusedGlobalsError) as exc:
        convert_to_safetensors(src, out)
    assert exc.value.refused == refused
    assert _leftovers(tmp_path) == []


def test_cli_converts_a_tar_and_refuses_a_foreign_global(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "old.pt", tmp_path / "old.safetensors"
    _tar_fixture(src)
    assert main(["convert", str(src), str(out)]) == 0
    assert "9 tensors" in capsys.readouterr().out and out.exists()
    evil = tmp_path / "evil.pt"
    build(
        evil, {1: np.ones(4, dtype=np.float32)}, {11: (1, (4,), (1,), 0)}, {"x": _TorchName("system", "os")}
    )
    assert main(["convert", str(evil), str(tmp_path / "e.safetensors")]) == 2
    assert "os.system" in capsys.readouterr().err and not (tmp_path / "e.safetensors").exists()
