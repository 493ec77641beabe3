"""PyTorch's pre-1.0 tar checkpoints, built by hand in the layout ``torch.serialization.legacy_load`` reads
(no current torch writes it), and hostile variants of them."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.arrays import to_array
from cairn.format.detect import detect
from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats


class _TorchName:
    """Stands for ``torch.<name>`` (or ``<module>.<name>``) in a pickle (written as a GLOBAL; nothing is
    imported)."""

    def __init__(self, name: str, module: str = "torch") -> None:
        self.name, self.module = name, module


torch_FloatStorage, torch_LongStorage = _TorchName("FloatStorage"), _TorchName("LongStorage")
torch_FloatTensor = _TorchName("FloatTensor")
STORAGE = {"F32": torch_FloatStorage, "I64": torch_LongStorage}


class _Pickler(pickle._Pickler):  # the Python pickler: its dispatch table can be extended per instance
    def __init__(self, f: io.BytesIO, pids: dict[int, str]) -> None:
        super().__init__(f, protocol=2)
        self.pids = pids
        self.dispatch = {**pickle._Pickler.dispatch, _TorchName: _Pickler.save_torch_name}  # type: ignore[dict-item]

    def persistent_id(self, obj: object) -> str | None:
        return self.pids.get(id(obj))

    def save_torch_name(self, obj: _TorchName) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())


def _dumps(obj: object, pids: dict[int, str] | None = None) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, pids or {}).dump(obj)
    return buf.getvalue()


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build(
    path: Path,
    storages: dict[int, np.ndarray],
    tensors: dict[int, tuple[int, tuple[int, ...], tuple[int, ...], int]],
    tree: object,
    *,
    views: list[tuple[int, int, int, int]] | None = None,
    patch: dict[str, bytes] | None = None,
    types: dict[int, str] | None = None,
) -> None:
    """``tensors[key] = (storage key, shape, stride, offset)``; ``tree`` holds tensor keys wrapped as
    ``_Ref(key)``, pickled as persistent ids. ``types[storage key]`` names the storage class
    (``HalfStorage``; by default ``FloatStorage`` for float32 arrays, ``LongStorage`` otherwise) and its
    tensors' headers the matching tensor class (``FloatTensor`` for a storage without a type)."""
    types = types or {}
    st = _dumps(len(storages))
    for key, arr in storages.items():
        cls = _TorchName(types[key]) if key in types else STORAGE["F32" if arr.dtype == np.float32 else "I64"]
        st += _dumps((key, "cpu", cls)) + struct.pack("<q", arr.size) + arr.tobytes()
    st += _dumps(views or [])
    te = _dumps(len(tensors))
    for key, (skey, shape, stride, offset) in tensors.items():
        kind = _TorchName(types[skey].replace("Storage", "Tensor")) if skey in types else torch_FloatTensor
        te += _dumps((key, skey, kind)) + struct.pack("<i", len(shape)) + b"\0" * 4
        te += struct.pack(f"<{len(shape)}q", *shape) + struct.pack(f"<{len(stride)}q", *stride)
        te += struct.pack("<q", offset)
    refs: dict[int, str] = {}

    def mark(node: object) -> None:
        if isinstance(node, _Ref):
            refs[id(node)] = str(node.key)
        elif isinstance(node, dict):
            for v in node.values():
                mark(v)

    mark(tree)
    members = {
        "sys_info": _dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}),
        "pickle": _dumps(tree, refs),
        "storages": st,
        "tensors": te,
    } | (patch or {})
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            _member(tar, name, data)


class _Ref:
    def __init__(self, key: int) -> None:
        self.key = key


def _simple(path: Path, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    w = np.arange(12, dtype=np.float32)
    steps = np.array([5, -6, 7], dtype=np.int64)
    build(
        path,
        {101: w, 102: steps},
        {201: (101, (3, 4), (4, 1), 0), 202: (101, (4, 3), (1, 4), 0), 203: (102, (2,), (1,), 1)},
        OrderedDict(state_dict=OrderedDict(weight=_Ref(201), weight_t=_Ref(202)), steps=_Ref(203), epoch=3),
        **kw,  # type: ignore[arg-type]
    )
    return w, steps


def test_a_pre_1_0_tar_lists_tensors_by_path_and_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    w, _ = _simple(path)
    assert detect(path) == "tar"
    info = inspect_path(path)
    assert info.format == "torch-tar"
    t = info.tensor_map()
    assert set(t) == {"state_dict.weight", "state_dict.weight_t", "steps"}
    np.testing.assert_array_equal(to_array(t["state_dict.weight"]), w.reshape(3, 4))
    np.testing.assert_array_equal(to_array(t["state_dict.weight_t"]), w.reshape(3, 4).T)
    np.testing.assert_array_equal(to_array(t["steps"]), [-6, 7])
    assert info.structure["epoch"] == 3  # type: ignore[index]
    st = tensor_stats(t["state_dict.weight_t"])
    assert st is not None and (st.min, st.max, st.mean) == (0.0, 11.0, 5.5)


def test_storage_views_address_part_of_their_root(tmp_path: Path) -> None:
    base = np.arange(10, dtype=np.float32)
    path = tmp_path / "views.pt"
    build(path, {1: base}, {9: (2, (3,), (1,), 1)}, {"v": _Ref(9)}, views=[(2, 1, 4, 5)])
    (rec,) = inspect_path(path).tensors
    np.testing.assert_array_equal(to_array(rec), base[5:8])


def test_a_tar_without_torch_members_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as tar:
        _member(tar, "readme.txt", b"hello")
    with pytest.raises(UnsupportedFormatError, match="not a PyTorch checkpoint"):
        inspect_path(path)


def test_too_many_members(tmp_path: Path) -> None:
    path = tmp_path / "many.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(70):
            _member(tar, f"m{i}", b"")
    with pytest.raises(LimitExceededError):
        inspect_path(path)


def _storages(*parts: bytes) -> bytes:
    return b"".join(parts)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"storages": _dumps(10**9)}, "count"),
        ({"storages": _dumps(1) + _dumps((1, "cpu", torch_FloatStorage)) + struct.pack("<q", 10**6)}, "runs past"),
        ({"storages": _dumps(1) + _dumps((1, "cpu", "os.system"))}, "unknown storage type"),
        ({"storages": _dumps(1) + b"\x80\x02(garbage"}, "well-formed pickle"),
        ({"tensors": _dumps(1) + _dumps((201, 999, torch_FloatTensor))}, "storage '999', which is missing"),
        ({"tensors": _dumps(1) + _dumps((201, 101, torch_FloatTensor)) + struct.pack("<i", 65) + b"\0" * 4},
         "65 dimensions"),
        ({"tensors": _dumps(1) + _dumps((201, 101, torch_FloatTensor)) + struct.pack("<i", 2)}, "ends inside"),
    ],
)  # fmt: skip
def test_hostile_members_give_format_errors(tmp_path: Path, patch: dict[str, bytes], message: str) -> None:
    path = tmp_path / "bad.pt"
    _simple(path, patch=patch)
    with pytest.raises(FormatError, match=message):
        inspect_path(path)


def test_a_view_past_its_storage_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    build(path, {1: np.arange(4, dtype=np.float32)}, {9: (1, (3,), (2,), 0)}, {"v": _Ref(9)})
    with pytest.raises(FormatError, match="reaches byte"):
        inspect_path(path)
    build(path, {1: np.arange(4, dtype=np.float32)}, {}, {}, views=[(2, 1, 3, 5)])
    with pytest.raises(FormatError, match="reaches past its root"):
        inspect_path(path)


def test_truncated_archives_give_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    _simple(path)
    data = path.read_bytes()
    for cut in range(0, len(data), 97):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        try:
            info = inspect_path(tmp_path / "cut.pt")
        except FormatError:
            continue
        for rec in info.tensors:
            to_array(rec)


def test_fixtures_read_the_same_in_torch(tmp_path: Path) -> None:
    """The hand-built layout is what torch's own legacy loader reads (our file, so loading it is safe)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "old.pt"
    _simple(path)
    loaded = torch.load(path, weights_only=False)
    ours = inspect_path(path).tensor_map()
    np.testing.assert_array_equal(
        to_array(ours["state_dict.weight_t"]), loaded["state_dict"]["weight_t"].numpy()
    )
    np.testing.assert_array_equal(to_array(ours["steps"]), loaded["steps"].numpy())
    assert loaded["epoch"] == 3
