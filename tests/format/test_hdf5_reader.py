"""HDF5 datasets listed by cairn's own reader, on files written by h5py in its different layouts."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError
from cairn.format.arrays import to_array
from cairn.format.reader import inspect_path

h5py = pytest.importorskip("h5py")


@pytest.mark.parametrize("libver", ["earliest", "latest"])  # superblock 0 + symbol tables / 3 + OHDR + links
def test_datasets_in_every_layout(tmp_path: Path, libver: str) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "layers/dense/vars/0": rng.standard_normal((4, 3)).astype(np.float32),
        "layers/dense/vars/1": np.arange(3, dtype=np.float64),
        "big_endian": np.arange(5, dtype=">i4"),
        "scalar": np.array(7, dtype=np.int64),
        **{f"many/m{i:03d}": np.full(2, i, dtype=np.int16) for i in range(70)},  # B-tree with inner nodes
    }
    path = tmp_path / "w.h5"
    with h5py.File(path, "w", libver=libver) as f:
        for name, arr in arrays.items():
            f.create_dataset(name, data=arr)
        f.create_dataset("chunked", data=np.ones((8, 8), np.float32), chunks=(4, 4), compression="gzip")
    info = inspect_path(path)
    assert info.format == "hdf5"
    got = info.tensor_map()
    assert not any("dense" in w for w in info.warnings)  # "latest": 70 links are stored densely
    for name, arr in arrays.items():
        rec = got[name.replace("/", ".")]
        assert rec.shape == arr.shape
        np.testing.assert_array_equal(to_array(rec), arr)
    assert got["chunked"].offset is None and any("chunked" in w for w in info.warnings)


def _keras(path: Path, weights: bytes, compression: int) -> None:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.6.0"}))
        zf.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        zf.writestr("model.weights.h5", weights)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_keras_weights_are_listed_and_readable(tmp_path: Path, compression: int) -> None:
    kernel = np.arange(12, dtype=np.float32).reshape(4, 3)
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("layers/dense/vars/0", data=kernel)
    _keras(tmp_path / "m.keras", (tmp_path / "w.h5").read_bytes(), compression)
    info = inspect_path(tmp_path / "m.keras")
    rec = info.tensor_map()["layers.dense.vars.0"]
    assert (rec.member is None) == (compression == zipfile.ZIP_STORED)
    np.testing.assert_array_equal(to_array(rec), kernel)


def test_broken_weights_become_a_warning_in_keras_and_an_error_alone(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("x", data=np.ones(3))
    data = (tmp_path / "w.h5").read_bytes()
    broken = data[:200]
    _keras(tmp_path / "m.keras", broken, zipfile.ZIP_STORED)
    info = inspect_path(tmp_path / "m.keras")
    assert not info.tensors and any("not listed" in w for w in info.warnings)
    (tmp_path / "cut.h5").write_bytes(broken)
    with pytest.raises(FormatError):
        inspect_path(tmp_path / "cut.h5")


def test_truncations_of_a_real_file(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_dataset("a/b", data=np.ones((3, 3)))
    data = (tmp_path / "w.h5").read_bytes()
    end = max(t.offset + t.nbytes for t in inspect_path(tmp_path / "w.h5").tensors if t.offset)
    for cut in range(8, end, 97):
        (tmp_path / "cut.h5").write_bytes(data[:cut])
        with pytest.raises(FormatError):
            info = inspect_path(tmp_path / "cut.h5")
            for t in info.tensors:
                to_array(t)
            raise AssertionError(f"cut at {cut} was accepted")


def test_continuation_cycle_in_a_v2_header_is_cut_off(tmp_path: Path) -> None:
    import struct

    from cairn.errors import LimitExceededError

    def cont(to: int, length: int) -> bytes:  # a continuation message: type, size, flags, address, length
        return bytes([0x10]) + struct.pack("<H", 16) + b"\0" + struct.pack("<QQ", to, length)

    ochk_at = 200
    ochk = b"OCHK" + cont(ochk_at, 28) + b"\0" * 4  # a continuation block that continues into itself
    header = b"OHDR\x02\x00" + bytes([20]) + cont(ochk_at, 28) + b"\0" * 4
    sb = b"\x89HDF\r\n\x1a\n" + bytes([2, 8, 8, 0]) + struct.pack("<QQQQ", 0, 0xFFFFFFFFFFFFFFFF, 0, 96)
    data = bytearray(300)
    data[: len(sb)] = sb
    data[96 : 96 + len(header)] = header
    data[ochk_at : ochk_at + len(ochk)] = ochk
    (tmp_path / "cycle.h5").write_bytes(bytes(data))
    with pytest.raises(LimitExceededError, match="blocks"):
        inspect_path(tmp_path / "cycle.h5")


# -- dense link storage: v2 B-tree name index over a fractal heap ------------------------------------


def _dense(path: Path, links: int, *, name_len: int = 8, track_order: bool = False) -> list[str]:
    """A group of ``links`` hard links (to one small dataset) stored densely; returns the link names."""
    names = [f"{i:0{name_len}d}" for i in range(links)]
    with h5py.File(path, "w", libver="latest", track_order=track_order) as f:
        target = f.create_dataset("target", data=np.arange(3, dtype=np.int32))
        g = f.create_group("g", track_order=track_order)
        for n in names:
            g[n] = target
    return names


@pytest.mark.parametrize(
    ("links", "name_len", "track_order"),
    [(9, 8, False), (400, 8, True), (2600, 200, False)],  # leaf root; inner B-tree nodes; nested FHIB
)
def test_dense_groups_list_every_link(tmp_path: Path, links: int, name_len: int, track_order: bool) -> None:
    from cairn.format.hdf5 import _File, _root
    from cairn.format.hdf5_dense import dense_links

    path = tmp_path / "d.h5"
    names = _dense(path, links, name_len=name_len, track_order=track_order)
    with path.open("rb") as fh:
        size = path.stat().st_size
        base, root = _root(fh, size, str(path))
        h5 = _File(fh, size, str(path), base)
        group = h5.header(base + dict(h5.header(base + root).links or [])["g"])
        assert group.dense is not None
        found = dense_links(h5, *group.dense)
    assert sorted(n for n, _ in found) == names
    assert len({addr for _, addr in found}) == 1  # every link names the one dataset
    info = inspect_path(path)
    assert not info.warnings and len(info.tensors) == 1  # each object is listed once, by its first name
    np.testing.assert_array_equal(to_array(info.tensors[0]), [0, 1, 2])


def _mutated(data: bytes, signature: bytes, at: int, new: bytes, which: int = 0) -> bytes:
    pos = -1
    for _ in range(which + 1):
        pos = data.index(signature, pos + 1)
    return data[: pos + at] + new + data[pos + at + len(new) :]


@pytest.mark.parametrize(
    ("signature", "at", "new", "which", "message"),
    [
        (b"BTHD", 0, b"XXXX", 0, "not a link name index"),
        (b"BTHD", 12, (40).to_bytes(2, "little"), 0, "impossible geometry"),  # depth 40
        (b"BTHD", 24, (0xFFFF).to_bytes(2, "little"), 0, "claims 65535 records"),
        (b"BTLF", 0, b"BTIN", 0, "wrong signature"),
        (b"BTLF", 6 + 4 + 1, b"\xff\xff\xff\x7f", 0, "in no block"),  # a heap offset past the heap
        (b"BTLF", 6 + 4 + 1 + 4, b"\xff\x7f", 0, "runs past its block"),  # a huge object length
        (b"FRHP", 110, b"\0\0", 0, "impossible geometry"),  # table width 0
        (b"FHDB", 0, b"XXXX", 0, "direct block"),
        (b"FHIB", 0, b"XXXX", 0, "indirect block"),
    ],
)
def test_hostile_dense_groups_give_format_errors(
    tmp_path: Path, signature: bytes, at: int, new: bytes, which: int, message: str
) -> None:
    path = tmp_path / "d.h5"
    _dense(path, 400)
    (tmp_path / "bad.h5").write_bytes(_mutated(path.read_bytes(), signature, at, new, which))
    with pytest.raises(FormatError, match=message):
        inspect_path(tmp_path / "bad.h5")


def test_a_b_tree_child_reached_twice_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    _dense(path, 400)
    data = path.read_bytes()
    inner = data.index(b"BTIN")
    head = data.index(b"BTHD")
    rec_size = int.from_bytes(data[head + 10 : head + 12], "little")
    count = int.from_bytes(data[head + 24 : head + 26], "little")
    first = inner + 6 + count * rec_size  # the first child pointer: address, then its record count
    pointer = data[first : first + 8]
    second = first + 8 + 1  # leaf record counts fit one byte here (a 512-byte node holds < 256)
    bad = data[:second] + pointer + data[second + 8 :]
    (tmp_path / "bad.h5").write_bytes(bad)
    with pytest.raises(FormatError, match="reached twice"):
        inspect_path(tmp_path / "bad.h5")
