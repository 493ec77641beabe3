"""Read PyTorch's pre-1.0 tar checkpoints structurally: never unpickled, never extracted.

``torch.save`` before 0.4 wrote an uncompressed tar with four members (``torch.serialization.legacy_load``
still reads them):

* ``sys_info``: a pickle of ``{"protocol_version", "little_endian", "type_sizes"}``;
* ``storages``: a pickle of the storage count; then per storage a pickle of ``(key, location,
  torch.<T>Storage)``, an 8-byte little-endian element count and the bytes; then a pickle of the list of
  storage views ``(view key, root key, element offset, element count)``;
* ``tensors``: a pickle of the tensor count; then per tensor a pickle of ``(key, storage key,
  torch.<T>Tensor)``, a 4-byte ``ndim`` (and 4 bytes of padding), ``ndim`` 8-byte sizes, ``ndim`` 8-byte
  strides and an 8-byte storage offset;
* ``pickle``: the object tree, in which tensors (and storages) are persistent ids ``str(key)``.

Every pickle is walked by :func:`cairn.format.pickle_vm.walk`; counts, dimensions, sizes and offsets are
checked against the member's bytes before use; each tensor must fit its storage, each view its root.
Storages are addressed in place (tar stores members uncompressed), so stats and diff read them by
memory map.
"""

from __future__ import annotations

import mmap
import tarfile
from pathlib import Path

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.inspection import Inspection
from cairn.format.objtree import MAX_DIMS, STORAGE_DTYPES, TensorRef, collect, qualname
from cairn.format.pickle_vm import Global, PickleResult, walk
from cairn.format.torch_files import MAX_PICKLE_SIZE, MAX_STORAGES, TorchCheckpoint, _records

__all__ = ["MAX_MEMBERS", "TENSOR_TYPES", "inspect_torch_tar", "read_torch_tar"]

MAX_MEMBERS = 64
_NEEDED = ("pickle", "storages", "tensors")
#: the tensor classes a tensor header names (``torch.FloatTensor``...); the loader ignores them, and
#: ``convert`` allows them in the header pickles of this format only
TENSOR_TYPES = frozenset(f"torch.{s.removesuffix('Storage')}Tensor" for s in STORAGE_DTYPES)


def _members(path: Path, size: int) -> dict[str, tuple[int, int]]:
    """Member name → (data offset, size) for the regular files of an uncompressed tar, read header by
    header (at most :data:`MAX_MEMBERS`)."""
    out: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for count, info in enumerate(iter(tar.next, None)):
                if count >= MAX_MEMBERS:
                    raise LimitExceededError(f"tar archive has over {MAX_MEMBERS} members", path=path)
                if info.isreg() and not info.issparse():
                    if info.offset_data + info.size > size:
                        raise FormatError(f"tar member {info.name!r} runs past the end", path=path)
                    out[info.name] = (info.offset_data, info.size)
    except (tarfile.TarError, ValueError, UnicodeError, EOFError) as exc:
        raise FormatError(f"not a readable tar archive: {exc}", path=path) from None
    missing = [m for m in _NEEDED if m not in out]
    if missing:
        raise UnsupportedFormatError(
            f"a tar archive that is not a PyTorch checkpoint (no {', '.join(missing)} member)", path=path
        )
    return out


class _Member:
    """Sequential reads of pickles and fixed integers inside one member's byte range."""

    def __init__(self, data: memoryview, span: tuple[int, int], name: str, path: str) -> None:
        self.data, self.pos, self.end, self.name, self.path = data, span[0], span[0] + span[1], name, path
        self.walks: list[PickleResult] = []  # every pickle read, for ``convert``'s allowlist check

    def fail(self, message: str) -> FormatError:
        return FormatError(f"member {self.name!r}: {message}", path=self.path)

    def pickle(self, what: str) -> PickleResult:
        result = walk(self.data[: self.end], self.pos)
        if not result.ok:
            first = result.errors[0] if result.errors else "it ends without STOP"
            raise self.fail(f"{what} is not a well-formed pickle: {first}")
        self.pos = result.end
        self.walks.append(result)
        return result

    def count(self, what: str, least_bytes: int) -> int:
        n = self.pickle(what).value
        if type(n) is not int or n < 0 or n > MAX_STORAGES:
            raise self.fail(f"{what} {n!r} is not a count up to {MAX_STORAGES}")
        if n * least_bytes > self.end - self.pos:
            raise self.fail(f"{what} {n} cannot fit the member's {self.end - self.pos} bytes")
        return n

    def ints(self, n: int, width: int, what: str) -> list[int]:
        if self.pos + n * width > self.end:
            raise self.fail(f"ends inside {what}")
        raw = self.data[self.pos : self.pos + n * width]
        self.pos += n * width
        return [int.from_bytes(raw[i * width : (i + 1) * width], "little", signed=True) for i in range(n)]


def _storage_type(value: object, m: _Member) -> tuple[str, int, str]:
    if isinstance(value, Global) and value.module == "torch" and value.name in STORAGE_DTYPES:
        return (*STORAGE_DTYPES[value.name], qualname(value))
    raise m.fail(f"unknown storage type {value!r}")


def _key(value: object, m: _Member) -> str:
    if type(value) is int or isinstance(value, str):
        return str(value)
    raise m.fail(f"key {value!r} is not an int or a string")


def _storages(m: _Member) -> dict[str, tuple[str, int, int, int]]:
    """Storage key → (dtype, itemsize, absolute data offset, element count), views included."""
    out: dict[str, tuple[str, int, int, int]] = {}
    for _ in range(m.count("storage count", 8)):
        head = m.pickle("storage header").value
        if not (isinstance(head, tuple) and len(head) == 3):
            raise m.fail(f"storage header {head!r} is not (key, location, type)")
        key = _key(head[0], m)
        dtype, itemsize, _ = _storage_type(head[2], m)
        (numel,) = m.ints(1, 8, f"the size of storage {key!r}")
        if numel < 0 or m.pos + numel * itemsize > m.end:
            raise m.fail(f"storage {key!r} of {numel} elements runs past the member")
        out[key] = (dtype, itemsize, m.pos, numel)
        m.pos += numel * itemsize
    views = m.pickle("storage views").value if m.pos < m.end else []
    if not isinstance(views, list):
        raise m.fail("storage views are not a list")
    for view in views:
        if not (isinstance(view, tuple) and len(view) == 4):
            raise m.fail(f"storage view {view!r} is not (key, root, offset, count)")
        key, root = _key(view[0], m), _key(view[1], m)
        offset, numel = view[2], view[3]
        if root not in out or type(offset) is not int or type(numel) is not int or offset < 0 or numel < 0:
            raise m.fail(f"storage view {view!r} is invalid")
        dtype, itemsize, start, total = out[root]
        if offset + numel > total:
            raise m.fail(f"storage view {key!r} reaches past its root {root!r}")
        out[key] = (dtype, itemsize, start + offset * itemsize, numel)
    return out


def _tensors(m: _Member, storages: dict[str, tuple[str, int, int, int]]) -> dict[str, TensorRef]:
    out: dict[str, TensorRef] = {}
    for _ in range(m.count("tensor count", 16)):
        head = m.pickle("tensor header").value
        if not (isinstance(head, tuple) and len(head) == 3):
            raise m.fail(f"tensor header {head!r} is not (key, storage, type)")
        key, storage = _key(head[0], m), _key(head[1], m)
        if storage not in storages:
            raise m.fail(f"tensor {key!r} refers to storage {storage!r}, which is missing")
        (ndim,) = m.ints(1, 4, "a tensor's dimension count")
        if not 0 <= ndim <= MAX_DIMS:
            raise m.fail(f"tensor {key!r} has {ndim} dimensions")
        m.pos += 4  # padding: old writers stored ndim in 8 bytes
        shape, stride = tuple(m.ints(ndim, 8, "sizes")), tuple(m.ints(ndim, 8, "strides"))
        (offset,) = m.ints(1, 8, "a storage offset")
        if min((*shape, *stride, offset), default=0) < 0:
            raise m.fail(f"tensor {key!r} has a negative size, stride or offset")
        dtype, itemsize, _, _ = storages[storage]
        out[key] = TensorRef("", dtype, itemsize, shape, stride, offset, storage)
    return out


def read_torch_tar(path: str | Path) -> TorchCheckpoint:
    """A pre-1.0 ``torch.save`` tar: tensors named by their path in the object tree, storages in place.
    ``headers`` holds every pickle besides the tree (sys info, storage and tensor headers, views)."""
    p = Path(path)
    sp, size = str(p), p.stat().st_size
    spans = _members(p, size)
    if spans["pickle"][1] > MAX_PICKLE_SIZE:
        raise LimitExceededError(f"pickle member exceeds {MAX_PICKLE_SIZE} bytes", path=sp)
    with p.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        data = memoryview(mm)
        try:
            big = False
            heads: list[_Member] = []
            if "sys_info" in spans:
                heads.append(_Member(data, spans["sys_info"], "sys_info", sp))
                info = heads[-1].pickle("sys info").value
                big = isinstance(info, dict) and info.get("little_endian") is False
            heads.append(_Member(data, spans["storages"], "storages", sp))
            storages = _storages(heads[-1])
            heads.append(_Member(data, spans["tensors"], "tensors", sp))
            tensors = _tensors(heads[-1], storages)
            main = _Member(data, spans["pickle"], "pickle", sp).pickle("object tree")
        finally:
            data.release()
    tree = collect(main.value, path=sp, persistent=tensors)
    locate: dict[str, tuple[int, int, str | None]] = {
        key: (start, numel * itemsize, None) for key, (_, itemsize, start, numel) in storages.items()
    }
    records = _records(tree.tensors, locate, sp, big)
    globals_ = tuple(dict.fromkeys(qualname(g) for g in main.globals))
    info_ = Inspection(sp, "torch-tar", tuple(records), {}, globals=globals_, structure=tree.structure)
    return TorchCheckpoint(info_, main, tuple(w for m in heads for w in m.walks))


def inspect_torch_tar(path: str | Path) -> Inspection:
    return read_torch_tar(path).inspection
