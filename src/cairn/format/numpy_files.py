"""Read NumPy ``.npy`` and ``.npz`` headers without loading arrays or pickles.

``.npy`` (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)::

    6 bytes  \\x93NUMPY      1 byte major (1, 2 or 3), 1 byte minor
    2 bytes (v1) or 4 bytes (v2, v3) little-endian header length H
    H bytes  a Python literal dict {'descr': ..., 'fortran_order': bool, 'shape': (...)}, space padded
    rest     the array's bytes

The header is read only after ``H`` is checked against :data:`MAX_NPY_HEADER`, and parsed with
``ast.literal_eval`` (literals only, nothing is called). Object arrays hold a pickle: they are listed with
dtype ``object`` and never read. ``.npz`` is a zip of ``.npy`` members; for stored (uncompressed) members
the local file header is checked against the central directory so the recorded offset is the real one.
"""

from __future__ import annotations

import ast
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cairn.errors import FormatError, LimitExceededError
from cairn.format.inspection import Inspection, TensorRecord

__all__ = [
    "MAX_NPY_HEADER",
    "MAX_NPZ_MEMBERS",
    "NpyHeader",
    "inspect_npy",
    "inspect_npz",
    "local_data_start",
    "read_npy_header",
]

MAX_NPY_HEADER = 1 << 16
MAX_NPZ_MEMBERS = 100_000
MAX_DIMS = 64

_NAMES = {"b1": "BOOL", "u1": "U8", "i1": "I8", "i2": "I16", "u2": "U16", "f2": "F16", "i4": "I32"}
_NAMES |= {"u4": "U32", "f4": "F32", "f8": "F64", "i8": "I64", "u8": "U64", "c8": "C64", "c16": "C128"}


@dataclass(frozen=True)
class NpyHeader:
    dtype: str  # a cairn dtype name, or numpy's str for anything else ("object" for pickled arrays)
    shape: tuple[int, ...]
    fortran_order: bool
    big_endian: bool
    itemsize: int
    header_size: int  # bytes before the data, magic included
    has_object: bool


def read_npy_header(f: BinaryIO, *, path: str | None = None) -> NpyHeader:
    head = f.read(10)
    if len(head) < 10 or not head.startswith(b"\x93NUMPY"):
        raise FormatError("not a .npy array (bad magic)", path=path)
    major = head[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", head[8:10])
        start = 10
    elif major in (2, 3):
        head += f.read(2)
        if len(head) < 12:
            raise FormatError("file ends inside the .npy header length", path=path)
        (hlen,) = struct.unpack("<I", head[8:12])
        start = 12
    else:
        raise FormatError(f".npy format version {major} is not supported", path=path)
    if hlen > MAX_NPY_HEADER:
        raise LimitExceededError(
            f".npy header of {hlen} bytes exceeds the limit of {MAX_NPY_HEADER}", path=path
        )
    raw = f.read(hlen)
    if len(raw) != hlen:
        raise FormatError("file ends inside the .npy header", path=path)
    try:
        doc = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin-1").strip())
    except (ValueError, SyntaxError, RecursionError, MemoryError, UnicodeDecodeError, TypeError) as exc:
        raise FormatError(f".npy header is not a literal dict: {exc}", path=path) from None
    return _header_fields(doc, start + hlen, path)


def _header_fields(doc: object, header_size: int, path: str | None) -> NpyHeader:
    if not isinstance(doc, dict) or set(doc) != {"descr", "fortran_order", "shape"}:
        raise FormatError(".npy header must have exactly descr, fortran_order and shape", path=path)
    shape, fortran = doc["shape"], doc["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise FormatError(f".npy shape {shape!r} is not a tuple of non-negative ints", path=path)
    if len(shape) > MAX_DIMS:
        raise LimitExceededError(f".npy array has {len(shape)} dimensions", path=path)
    if not isinstance(fortran, bool):
        raise FormatError(".npy fortran_order is not a bool", path=path)
    try:
        dt = np.dtype(doc["descr"])
    except (TypeError, ValueError) as exc:
        raise FormatError(f".npy descr {doc['descr']!r} is not a dtype: {exc}", path=path) from None
    code = f"{dt.kind}{dt.itemsize}"
    name = "object" if dt.hasobject else _NAMES.get(code, dt.str)
    return NpyHeader(
        name,
        tuple(shape),
        fortran,
        dt.byteorder == ">",
        dt.itemsize,
        header_size,
        dt.hasobject,
    )


def _record(name: str, h: NpyHeader, file: str, offset: int, member: str | None = None) -> TensorRecord:
    strides = None
    if h.fortran_order and len(h.shape) > 1:
        acc, out = 1, []
        for d in h.shape:
            out.append(acc)
            acc *= d
        strides = tuple(out)
    nbytes = math.prod(h.shape) * h.itemsize
    loc = None if h.has_object else offset
    return TensorRecord(name, h.dtype, h.shape, nbytes, file, loc, strides, 0, member, h.big_endian)


def inspect_npy(path: str | Path) -> Inspection:
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as f:
        h = read_npy_header(f, path=str(p))
    warnings = _check_size(h, size - h.header_size, str(p), "array")
    return Inspection(str(p), "npy", (_record("array", h, str(p), h.header_size),), warnings=warnings)


def _check_size(h: NpyHeader, available: int, path: str, name: str) -> tuple[str, ...]:
    if h.has_object:
        return (f"{name}: object array; its data is a pickle and was not read",)
    need = math.prod(h.shape) * h.itemsize
    if need != available:
        raise FormatError(f"{name}: header declares {need} bytes of data but {available} follow", path=path)
    return ()


def local_data_start(f: BinaryIO, info: zipfile.ZipInfo, path: str) -> int:
    """Absolute offset of a stored member's data, after checking its local header names the same file."""
    f.seek(info.header_offset)
    local = f.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        raise FormatError(f"member {info.filename!r}: no local file header at its offset", path=path)
    name_len, extra_len = (int(v) for v in struct.unpack("<HH", local[26:30]))
    name = f.read(name_len)
    if name.decode("utf-8", "replace") != info.filename and name.decode("cp437") != info.filename:
        raise FormatError(f"member {info.filename!r}: local header names {name!r}", path=path)
    return info.header_offset + 30 + name_len + extra_len


def inspect_npz(path: str | Path) -> Inspection:
    p = Path(path)
    sp = str(p)
    size = p.stat().st_size
    records: list[TensorRecord] = []
    warnings: list[str] = []
    try:
        with zipfile.ZipFile(p) as zf, p.open("rb") as raw:
            infos = zf.infolist()
            if len(infos) > MAX_NPZ_MEMBERS:
                raise LimitExceededError(f"archive has {len(infos)} members", path=sp)
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if info.compress_type == zipfile.ZIP_STORED:
                    start = local_data_start(raw, info, sp)
                    if start + info.file_size > size or info.compress_size != info.file_size:
                        raise FormatError(f"member {info.filename!r} runs past the end of the file", path=sp)
                    raw.seek(start)
                    h = read_npy_header(raw, path=f"{sp}:{info.filename}")
                    warnings += _check_size(h, info.file_size - h.header_size, sp, name)
                    records.append(_record(name, h, sp, start + h.header_size))
                else:
                    with zf.open(info) as member:
                        h = read_npy_header(member, path=f"{sp}:{info.filename}")  # type: ignore[arg-type]
                    warnings += _check_size(h, info.file_size - h.header_size, sp, name)
                    records.append(_record(name, h, sp, h.header_size, member=info.filename))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"not a readable .npz archive: {exc}", path=sp) from None
    return Inspection(sp, "npz", tuple(records), warnings=tuple(warnings))
