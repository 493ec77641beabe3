"""NumPy .npy/.npz headers read without loading; hostile headers and archives give typed errors."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError, LimitExceededError
from cairn.format.arrays import to_array
from cairn.format.reader import inspect_path


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        np.arange(5, dtype=">f8"),
        np.array([True, False]),
        np.zeros((0, 3), np.float32),
    ],
)
def test_npy_round_trips_through_the_recorded_location(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", array)
    info = inspect_path(tmp_path / "a.npy")
    (rec,) = info.tensors
    assert info.format == "npy" and rec.shape == array.shape
    np.testing.assert_array_equal(to_array(rec), array)


def test_object_arrays_are_listed_but_never_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    info = inspect_path(tmp_path / "o.npy")
    assert info.tensors[0].dtype == "object" and info.tensors[0].offset is None
    assert "pickle" in info.warnings[0]


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members(tmp_path: Path, compressed: bool) -> None:
    arrays = {"w": np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32), "i": np.arange(3)}
    (np.savez_compressed if compressed else np.savez)(tmp_path / "a.npz", **arrays)
    info = inspect_path(tmp_path / "a.npz")
    assert info.format == "npz"
    got = info.tensor_map()
    assert set(got) == {"w", "i"}
    assert (got["w"].member is not None) == compressed
    for name, arr in arrays.items():
        np.testing.assert_array_equal(to_array(got[name]), arr)


def _npy(header: bytes, body: bytes = b"", version: int = 1) -> bytes:
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + body


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", b"\0" * 8), FormatError),  # lies
        (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1 << 62, 1 << 62)}"), FormatError),
        (b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31), LimitExceededError),  # huge declared header
        (_npy(b"__import__('os').system('true')"), FormatError),  # code is not a literal
        (_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}"), FormatError),
        (_npy(b"{'descr': 'nonsense', 'fortran_order': False, 'shape': (1,)}"), FormatError),
        (_npy(b"{'descr': '<f4', 'shape': (1,)}"), FormatError),
        (_npy(b"[" * 5000 + b"]" * 5000), FormatError),  # deep nesting
        (b"\x93NUMPY\x09\x00\x10\x00", FormatError),  # unknown version
        (b"\x93NUMPY\x01\x00\x40\x00{'descr'", FormatError),  # truncated
    ],
)
def test_hostile_npy(tmp_path: Path, blob: bytes, error: type[Exception]) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(blob)
    with pytest.raises(error):
        inspect_path(path)


def test_npz_local_header_disagreeing_with_central_directory(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", weights=np.ones(3))
    data = bytearray((tmp_path / "a.npz").read_bytes())
    pos = data.index(b"weights.npy")  # the local header's copy of the name comes first
    data[pos : pos + 7] = b"WEIGHTS"
    (tmp_path / "a.npz").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="local header"):
        inspect_path(tmp_path / "a.npz")


def test_truncated_npz_is_a_format_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", w=np.ones(100))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        inspect_path(tmp_path / "a.npz")


def test_npz_member_that_is_not_npy(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as zf:
        zf.writestr("x.npy", b"not an array at all")
    with pytest.raises(FormatError, match="bad magic"):
        inspect_path(tmp_path / "a.npz")


def test_zip_declaring_too_many_members_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cairn.format import detect

    np.savez(tmp_path / "a.npz", w=np.ones(3))
    data = bytearray((tmp_path / "a.npz").read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    data[eocd + 8 : eocd + 12] = struct.pack("<HH", 0xFFFE, 0xFFFE)
    (tmp_path / "a.npz").write_bytes(bytes(data))
    assert detect.zip_entry_count(tmp_path / "a.npz") == 0xFFFE
    monkeypatch.setattr(detect, "_MAX_ZIP_MEMBERS", 1000)
    with pytest.raises(LimitExceededError, match="declares 65534 members"):
        inspect_path(tmp_path / "a.npz")
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04" + b"\0" * 100)  # no end record at all
    with pytest.raises(FormatError, match="end-of-central-directory"):
        inspect_path(tmp_path / "b.npz")
