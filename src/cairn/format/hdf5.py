"""List the datasets of an HDF5 file (Keras weights) without an HDF5 library: names, dtypes, shapes, offsets.

Only the subset h5py writes by default is read (https://docs.hdfgroup.org/hdf5/develop/_f_m_t3.html):

* superblock versions 0–3; offsets and lengths of 8 bytes;
* object headers version 1 (and continuation blocks) and version 2 (``OHDR``/``OCHK``);
* groups as symbol tables (v1 B-tree ``TREE`` of ``SNOD`` nodes, names in a local ``HEAP``), as
  compact link messages, or in dense link storage (a v2 B-tree name index over a fractal heap:
  :mod:`cairn.format.hdf5_dense`);
* datasets: dataspace (v1, v2), datatype (fixed-point and IEEE float, either byte order; anything else is
  listed by class), data layout v1–v4 (contiguous and compact data are addressable; chunked is listed).

Every address and length is checked against the file before it is read; groups are walked at most
:data:`MAX_DEPTH` deep, each object once (no cycles), at most :data:`MAX_OBJECTS` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from cairn.errors import FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.hdf5_dense import dense_links
from cairn.format.inspection import Inspection, TensorRecord

__all__ = ["MAX_DEPTH", "MAX_OBJECTS", "Readable", "inspect_hdf5", "list_datasets"]

MAX_DEPTH = 64
MAX_OBJECTS = 1_000_000
MAX_DIMS = 32
MAX_BLOCKS = 10_000  # continuation blocks of one object header
_SIG = b"\x89HDF\r\n\x1a\n"
_UNDEF = 0xFFFFFFFFFFFFFFFF


class Readable(Protocol):
    """What the reader needs of a file: a seekable binary stream."""

    def seek(self, pos: int, whence: int = 0, /) -> int: ...

    def read(self, n: int = -1, /) -> bytes: ...


@dataclass
class _Object:
    dims: tuple[int, ...] | None = None
    dtype: str | None = None
    itemsize: int = 0
    big_endian: bool = False
    data: tuple[int, int] | None = None  # absolute offset, size
    layout: str | None = None
    symbol_table: tuple[int, int] | None = None  # B-tree, local heap
    links: list[tuple[str, int]] | None = None
    dense: tuple[int, int] | None = None  # fractal heap, v2 B-tree name index


class _File:
    def __init__(self, f: Readable, size: int, path: str, base: int) -> None:
        self.f, self.size, self.path, self.base = f, size, path, base
        self.seen: set[int] = set()
        self.nodes = 0
        self.out: list[TensorRecord] = []
        self.warnings: list[str] = []

    def read(self, addr: int, n: int, what: str) -> bytes:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FormatError(f"HDF5 {what} at {addr} (+{n}) lies outside the file", path=self.path)
        self.f.seek(addr)
        return self.f.read(n)

    def u(self, raw: bytes, at: int, n: int) -> int:
        if at + n > len(raw):
            raise FormatError("HDF5 structure is shorter than its fields", path=self.path)
        return int.from_bytes(raw[at : at + n], "little")

    # -- object headers --------------------------------------------------------------------------------
    def header(self, addr: int) -> _Object:
        obj = _Object()
        prefix = self.read(addr, 16, "object header")
        if prefix[:4] == b"OHDR":
            self._v2(addr, obj)
        elif prefix[0] == 1:
            count, size = self.u(prefix, 2, 2), self.u(prefix, 8, 4)
            blocks = [(addr + 16, size)]
            done = 0
            while blocks and done <= count:
                start, length = blocks.pop(0)
                pos, end = start, start + length
                body = self.read(start, length, "object header messages")
                while pos + 8 <= end and done < count:
                    mtype, msize = self.u(body, pos - start, 2), self.u(body, pos - start + 2, 2)
                    data = body[pos - start + 8 : pos - start + 8 + msize]
                    if len(data) != msize:
                        raise FormatError(f"HDF5 message at {pos} runs past its header", path=self.path)
                    if mtype == 0x10:
                        blocks.append((self.u(data, 0, 8), self.u(data, 8, 8)))
                    else:
                        self.message(mtype, data, obj, pos + 8)
                    pos += 8 + msize
                    done += 1
        else:
            raise UnsupportedFormatError(f"HDF5 object header version {prefix[0]} at {addr}", path=self.path)
        return obj

    def _v2(self, addr: int, obj: _Object) -> None:
        head = self.read(addr, 4 + 2 + 16 + 4 + 8, "object header")
        flags = head[5]
        pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = self.u(head, pos, width)
        blocks = [(addr + pos + width, size, False)]
        followed = 0
        while blocks:
            followed += 1
            if followed > MAX_BLOCKS:
                raise LimitExceededError(
                    f"HDF5 object header at {addr} has over {MAX_BLOCKS} blocks", path=self.path
                )
            start, length, is_cont = blocks.pop(0)
            body = self.read(start, length, "object header messages")
            i = 4 if is_cont else 0
            if is_cont and body[:4] != b"OCHK":
                raise FormatError(f"HDF5 continuation block at {start} has no OCHK signature", path=self.path)
            end = length - (4 if is_cont else 0)
            while i + 4 <= end:
                mtype, msize, mflags = body[i], self.u(body, i + 1, 2), body[i + 3]
                i += 4 + (2 if flags & 0x04 else 0)
                data = body[i : i + msize]
                if len(data) != msize:
                    raise FormatError(f"HDF5 message at {start + i} runs past its header", path=self.path)
                if mtype == 0x10:
                    blocks.append((self.u(data, 0, 8), self.u(data, 8, 8), True))
                elif mflags & 0x02 == 0:  # shared messages are not followed
                    self.message(mtype, data, obj, start + i)
                i += msize

    def message(self, mtype: int, data: bytes, obj: _Object, at: int) -> None:
        if mtype == 0x01:
            self._dataspace(data, obj)
        elif mtype == 0x03:
            self._datatype(data, obj)
        elif mtype == 0x08:
            self._layout(data, obj, at)
        elif mtype == 0x11:
            obj.symbol_table = (self.u(data, 0, 8), self.u(data, 8, 8))
        elif mtype == 0x06:
            self._link(data, obj)
        elif mtype == 0x02:  # link info: where a dense group keeps its links
            at = 2 + (8 if data[1] & 1 else 0)
            heap, index = self.u(data, at, 8), self.u(data, at + 8, 8)
            obj.dense = (heap, index) if heap != _UNDEF else None

    def _dataspace(self, data: bytes, obj: _Object) -> None:
        version, rank = data[0], data[1]
        if rank > MAX_DIMS:
            raise LimitExceededError(f"HDF5 dataspace of rank {rank}", path=self.path)
        start = 8 if version == 1 else 4
        obj.dims = tuple(self.u(data, start + 8 * i, 8) for i in range(rank))

    def _datatype(self, data: bytes, obj: _Object) -> None:
        cls, bits, size = data[0] & 0x0F, data[1], self.u(data, 4, 4)
        obj.itemsize, obj.big_endian = size, bool(bits & 1)
        if cls == 0 and size in (1, 2, 4, 8):
            obj.dtype = f"{'I' if bits & 0x08 else 'U'}{size * 8}"
        elif cls == 1 and size in (2, 4, 8):
            obj.dtype = f"F{size * 8}"
        else:
            obj.dtype = f"H5T_CLASS_{cls}"

    def _layout(self, data: bytes, obj: _Object, at: int) -> None:
        version = data[0]
        if version >= 3:  # 3 and 4 (and HDF5 2.0's 5, which only changes chunked layouts)
            cls = data[1]
            if cls == 1:
                obj.data, obj.layout = (self.u(data, 2, 8), self.u(data, 10, 8)), "contiguous"
            elif cls == 0:
                obj.data, obj.layout = (at + 4, self.u(data, 2, 2)), "compact"
            else:
                obj.layout = "chunked"
        elif version >= 1:
            cls = data[2]
            obj.layout = {0: "compact", 1: "contiguous"}.get(cls, "chunked")
            if cls == 1:
                obj.data = (self.u(data, 8, 8), -1)
        else:
            raise UnsupportedFormatError(f"HDF5 data layout version {version}", path=self.path)
        if obj.layout == "compact" and version < 3:
            obj.data = None  # v1/v2 compact data follows the dimension sizes: not addressed here

    def _link(self, data: bytes, obj: _Object) -> None:
        flags, pos = data[1], 2
        link_type = 0
        if flags & 0x08:
            link_type, pos = data[pos], pos + 1
        pos += (8 if flags & 0x04 else 0) + (1 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        length = self.u(data, pos, width)
        name = data[pos + width : pos + width + length].decode("utf-8", "replace")
        if link_type == 0:
            if obj.links is None:
                obj.links = []
            obj.links.append((name, self.u(data, pos + width + length, 8)))  # appended: dense groups are big

    # -- groups ------------------------------------------------------------------------------------------
    def heap_name(self, heap: int, offset: int) -> str:
        head = self.read(heap, 32, "local heap")
        if head[:4] != b"HEAP":
            raise FormatError(f"HDF5 local heap at {heap} has no HEAP signature", path=self.path)
        seg_size, seg = self.u(head, 8, 8), self.u(head, 24, 8)
        if offset >= seg_size:
            raise FormatError(f"HDF5 name offset {offset} is outside its heap", path=self.path)
        raw = self.read(seg + offset, min(seg_size - offset, 1024), "link name")
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def btree(self, addr: int, heap: int, depth: int) -> list[tuple[str, int]]:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_OBJECTS:
            raise LimitExceededError("HDF5 group B-tree is too deep or too large", path=self.path)
        head = self.read(addr, 24, "B-tree node")
        if head[:4] != b"TREE" or head[4] != 0:
            raise FormatError(f"HDF5 group B-tree at {addr} is malformed", path=self.path)
        level, used = head[5], self.u(head, 6, 2)
        body = self.read(addr + 24, (2 * used + 1) * 8, "B-tree keys")
        children = [self.u(body, 8 + 16 * i, 8) for i in range(used)]
        out: list[tuple[str, int]] = []
        for child in children:
            out += self.btree(child, heap, depth + 1) if level else self.snod(child, heap)
        return out

    def snod(self, addr: int, heap: int) -> list[tuple[str, int]]:
        head = self.read(addr, 8, "symbol table node")
        if head[:4] != b"SNOD":
            raise FormatError(f"HDF5 symbol table node at {addr} has no SNOD signature", path=self.path)
        count = self.u(head, 6, 2)
        self.nodes += count
        if self.nodes > MAX_OBJECTS:
            raise LimitExceededError(f"HDF5 file has more than {MAX_OBJECTS} group entries", path=self.path)
        body = self.read(addr + 8, 40 * count, "symbol table entries")
        return [
            (self.heap_name(heap, self.u(body, 40 * i, 8)), self.u(body, 40 * i + 8, 8)) for i in range(count)
        ]

    def walk(self, addr: int, name: str, depth: int) -> None:
        if addr in self.seen:
            return
        self.seen.add(addr)
        if len(self.seen) > MAX_OBJECTS:
            raise LimitExceededError(f"HDF5 file has more than {MAX_OBJECTS} objects", path=self.path)
        if depth > MAX_DEPTH:
            raise LimitExceededError(f"HDF5 groups nest deeper than {MAX_DEPTH}", path=self.path)
        obj = self.header(self.base + addr)
        if obj.dims is not None and obj.dtype is not None:
            self.dataset(name, obj)
            return
        children = list(obj.links or [])
        if obj.symbol_table is not None:
            btree, heap = obj.symbol_table
            children += self.btree(self.base + btree, self.base + heap, 0)
        if obj.dense is not None:
            try:
                children += dense_links(self, *obj.dense)
            except UnsupportedFormatError as exc:
                self.warnings.append(f"group {name or '/'} uses dense link storage cairn cannot list: {exc}")
        for child, child_addr in children:
            self.walk(child_addr, f"{name}.{child}" if name else child, depth + 1)

    def dataset(self, name: str, obj: _Object) -> None:
        assert obj.dims is not None and obj.dtype is not None
        nbytes = math.prod(obj.dims) * obj.itemsize
        offset = None
        if obj.data is not None and obj.data[0] != _UNDEF and not obj.dtype.startswith("H5T"):
            start, size = obj.data
            if size not in (-1, nbytes) or self.base + start + nbytes > self.size:
                raise FormatError(f"HDF5 dataset {name!r} data does not fit the file", path=self.path)
            offset = self.base + start if obj.layout == "contiguous" else start
        elif obj.layout == "chunked":
            self.warnings.append(f"dataset {name!r} is chunked: its values are not addressable")
        file = self.path if offset is not None else None
        self.out.append(
            replace(TensorRecord(name, obj.dtype, obj.dims, nbytes, file, offset), big_endian=obj.big_endian)
        )


def _root(f: Readable, size: int, path: str) -> tuple[int, int]:
    """(base address, root object header address) from the superblock at the start of the file."""
    head = f.read(96)
    if not head.startswith(_SIG):
        raise FormatError("not an HDF5 file (no signature at offset 0)", path=path)
    if len(head) < 96 or size < 96:
        raise FormatError("HDF5 file is shorter than its superblock", path=path)
    version = head[8]
    if version in (0, 1):
        if head[13] != 8 or head[14] != 8:
            raise UnsupportedFormatError("HDF5 offsets/lengths other than 8 bytes", path=path)
        at = 24 + (4 if version == 1 else 0)
        base = int.from_bytes(head[at : at + 8], "little")
        return base, int.from_bytes(head[at + 32 + 8 : at + 32 + 16], "little")
    if version in (2, 3):
        if head[9] != 8 or head[10] != 8:
            raise UnsupportedFormatError("HDF5 offsets/lengths other than 8 bytes", path=path)
        base = int.from_bytes(head[12:20], "little")
        return base, int.from_bytes(head[36:44], "little")
    raise UnsupportedFormatError(f"HDF5 superblock version {version}", path=path)


def list_datasets(f: Readable, size: int, path: str) -> tuple[list[TensorRecord], list[str]]:
    """Every dataset in the HDF5 file open as ``f`` (``size`` bytes), as tensor records named by their
    path with ``.`` separators; and warnings about what could not be listed."""
    f.seek(0)
    try:
        base, root = _root(f, size, path)
        h5 = _File(f, size, path, base)
        h5.walk(root, "", 0)
    except IndexError:  # a fixed field indexed past the end of a message that is too short
        raise FormatError("HDF5 message is shorter than its fields", path=path) from None
    return h5.out, h5.warnings


def inspect_hdf5(path: str | Path) -> Inspection:
    """A standalone HDF5 file (a Keras 2 ``.h5`` model, weights): its datasets as tensors."""
    p = Path(path)
    with p.open("rb") as f:
        records, warnings = list_datasets(f, p.stat().st_size, str(p))
    return Inspection(str(p), "hdf5", tuple(records), warnings=tuple(warnings))
