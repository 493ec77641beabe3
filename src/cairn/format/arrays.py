"""Read a tensor's bytes through the location a reader recorded, by memory map, in bounded chunks.

This is how ``stats``, ``diff`` and ``convert`` see data: :func:`iter_chunks` yields the tensor's elements
in C order as flat numpy arrays of at most ``chunk`` elements, so a tensor larger than RAM is streamed
through the page cache. ``BF16`` is widened to float32 on the way (numpy has no bfloat16); ``F8_*`` and
GGUF quantized types have no numeric view here and raise :class:`UnsupportedFormatError`.
Every location is checked against the file's size before it is mapped.
"""

from __future__ import annotations

import mmap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cairn.errors import FormatError, UnsupportedFormatError
from cairn.format.inspection import TensorRecord

__all__ = [
    "CHUNK_ELEMENTS",
    "NUMPY_DTYPES",
    "byte_view",
    "flat_view",
    "iter_chunks",
    "iter_raw",
    "numeric_dtype",
    "to_array",
]

CHUNK_ELEMENTS = 1 << 20

#: storage dtype names → the numpy dtype of their bytes (BF16 is stored as its raw 16 bits)
NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "U8": "u1",
    "I8": "i1",
    "I16": "i2",
    "U16": "u2",
    "F16": "f2",
    "BF16": "u2",
    "I32": "i4",
    "U32": "u4",
    "F32": "f4",
    "F64": "f8",
    "I64": "i8",
    "U64": "u8",
    "C64": "c8",
    "C128": "c16",
    "F8_E5M2": "u1",
    "F8_E4M3": "u1",
    "F8_E8M0": "u1",
}
_RAW_ONLY = {"F8_E5M2", "F8_E4M3", "F8_E8M0"}


def _storage_dtype(rec: TensorRecord) -> np.dtype[np.generic]:
    name = NUMPY_DTYPES.get(rec.dtype)
    if name is None:
        if rec.strides is None and rec.dtype != "object":
            return np.dtype("u1")  # quantized blocks and other packed types: their bytes, as bytes
        raise UnsupportedFormatError(
            f"tensor {rec.name!r} of type {rec.dtype} has no array view", path=rec.file
        )
    dt = np.dtype(name)
    return dt.newbyteorder(">") if rec.big_endian and dt.itemsize > 1 else dt


def numeric_dtype(rec: TensorRecord) -> bool:
    """Whether :func:`iter_chunks` can give this tensor's values as numbers."""
    return rec.dtype in NUMPY_DTYPES and rec.dtype not in _RAW_ONLY and None not in (rec.offset, rec.file)


def _raw_bytes_only(rec: TensorRecord) -> bool:
    return rec.dtype not in NUMPY_DTYPES


def _span(rec: TensorRecord, itemsize: int) -> int:
    """Bytes of storage the tensor's view reaches (from ``offset``)."""
    if _raw_bytes_only(rec):
        return rec.nbytes
    if rec.numel == 0:
        return 0
    strides = rec.strides or ()
    if rec.strides is None:
        last = rec.numel - 1
    else:
        last = sum((d - 1) * s for d, s in zip(rec.shape, strides, strict=True))
    return (rec.storage_offset + last + 1) * itemsize


def _storage(rec: TensorRecord) -> np.ndarray | None:
    """The bytes the tensor's view reaches, as a flat read-only array of its storage dtype over a memory
    map (from ``offset``); None when the view reaches no bytes. The span is checked against the file."""
    if rec.file is None or rec.offset is None:
        raise UnsupportedFormatError(f"tensor {rec.name!r} has no readable location", path=rec.file)
    if rec.member is not None:
        raise UnsupportedFormatError(f"tensor {rec.name!r} is inside a compressed member", path=rec.file)
    if rec.encoding is not None:
        raise UnsupportedFormatError(f"tensor {rec.name!r} is stored encoded ({rec.encoding})", path=rec.file)
    dt = _storage_dtype(rec)
    span = _span(rec, dt.itemsize)
    size = Path(rec.file).stat().st_size
    if rec.offset + span > size:
        raise FormatError(
            f"tensor {rec.name!r} needs bytes up to {rec.offset + span} but the file has {size}",
            path=rec.file,
        )
    if span == 0:
        return None
    with open(rec.file, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mm, dtype=dt, count=span // dt.itemsize, offset=rec.offset)


def _mapped(rec: TensorRecord) -> np.ndarray:
    """The tensor as a (possibly strided) read-only array over a memory map of its raw storage dtype."""
    flat = _storage(rec)
    if flat is None:
        return np.zeros(0 if _raw_bytes_only(rec) else rec.shape, dtype=_storage_dtype(rec))
    if _raw_bytes_only(rec):
        return flat
    if rec.strides is None:
        return flat.reshape(rec.shape)
    return np.lib.stride_tricks.as_strided(
        flat[rec.storage_offset :],
        shape=rec.shape,
        strides=tuple(s * flat.itemsize for s in rec.strides),
        writeable=False,
    )


def flat_view(rec: TensorRecord) -> np.ndarray | None:
    """The tensor's elements in C order as one flat read-only array of its storage dtype (BF16 as
    uint16) straight over the memory map, without a copy; None when that is impossible (strided views,
    compressed members, packed types) and :func:`iter_raw` must be used."""
    if rec.member is not None or rec.encoding is not None or not rec.contiguous or _raw_bytes_only(rec):
        return None
    if rec.numel == 0:
        return np.zeros(0, dtype=_storage_dtype(rec))
    flat = _storage(rec)
    assert flat is not None  # a non-empty tensor reaches at least one element
    return flat[rec.storage_offset : rec.storage_offset + rec.numel]


def _member_flat(rec: TensorRecord) -> Iterator[np.ndarray]:
    """A contiguous view's elements inflated from its compressed member, from its storage offset on
    (a strided view would need the whole storage inflated and then indexed: refused)."""
    assert rec.file is not None and rec.member is not None and rec.offset is not None
    if not rec.contiguous:
        raise UnsupportedFormatError(
            f"tensor {rec.name!r} is a strided view inside a compressed member", path=rec.file
        )
    dt = _storage_dtype(rec)
    want = rec.nbytes if _raw_bytes_only(rec) else rec.numel * dt.itemsize
    with zipfile.ZipFile(rec.file) as zf, zf.open(rec.member) as f:
        skip = rec.offset + rec.storage_offset * dt.itemsize
        while skip:  # inflate and drop the bytes before the view, a bounded chunk at a time
            dropped = f.read(min(skip, CHUNK_ELEMENTS * dt.itemsize))
            if not dropped:
                raise FormatError(f"member {rec.member!r} ends before tensor {rec.name!r}", path=rec.file)
            skip -= len(dropped)
        left = want
        while left:
            buf = f.read(min(left, CHUNK_ELEMENTS * dt.itemsize))
            if not buf or len(buf) % dt.itemsize:
                raise FormatError(f"member {rec.member!r} ends inside tensor {rec.name!r}", path=rec.file)
            left -= len(buf)
            yield np.frombuffer(buf, dtype=dt)


def _decoded(rec: TensorRecord, chunk: int) -> Iterator[np.ndarray]:
    from cairn.format import onnx_typed  # only ONNX typed fields are encoded today

    if not rec.encoding or not rec.encoding.startswith(onnx_typed.ENCODING + ":"):
        raise UnsupportedFormatError(f"tensor {rec.name!r} has unknown encoding {rec.encoding!r}")
    for values in onnx_typed.decode(rec):
        for start in range(0, values.size, chunk):
            yield values[start : start + chunk]


def iter_raw(rec: TensorRecord, chunk: int | None = None) -> Iterator[np.ndarray]:
    """The tensor's elements in C order, as flat arrays of its storage dtype (BF16 as uint16)."""
    chunk = chunk or CHUNK_ELEMENTS
    if rec.numel == 0 and not _raw_bytes_only(rec):
        return
    if rec.member is not None:
        yield from _member_flat(rec)
        return
    if rec.encoding is not None:
        yield from _decoded(rec, chunk)
        return
    arr = _mapped(rec)
    if rec.contiguous:
        flat = arr.reshape(-1)
        for start in range(0, flat.size, chunk):
            yield flat[start : start + chunk]
        return
    rows = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1)
    per = max(1, chunk // max(1, rows.shape[1]))
    for start in range(0, rows.shape[0], per):
        yield np.ascontiguousarray(rows[start : start + per]).reshape(-1)


def _widen(rec: TensorRecord, raw: np.ndarray) -> np.ndarray:
    if rec.dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw


def iter_chunks(rec: TensorRecord, chunk: int | None = None) -> Iterator[np.ndarray]:
    """The tensor's values in C order as flat numeric arrays of at most ``chunk`` elements."""
    if not numeric_dtype(rec):
        raise UnsupportedFormatError(
            f"tensor {rec.name!r} of type {rec.dtype} has no numeric view", path=rec.file
        )
    for raw in iter_raw(rec, chunk):
        yield _widen(rec, raw)


def to_array(rec: TensorRecord) -> np.ndarray:
    """The whole tensor as one C-contiguous array of its storage dtype, native byte order (a copy)."""
    parts = list(iter_raw(rec))
    dt = _storage_dtype(rec)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=dt)
    flat = flat.astype(dt.newbyteorder("="), copy=False)
    return flat if _raw_bytes_only(rec) else flat.reshape(rec.shape)


def byte_view(rec: TensorRecord) -> memoryview:
    """The tensor's bytes in C order and native byte order, as a flat byte view: zero-copy (straight
    from the memory map) when the tensor is contiguous and stored uncompressed, a copy otherwise."""
    dt = _storage_dtype(rec)
    if rec.member is None and rec.encoding is None and rec.contiguous and dt.isnative:
        arr = np.ascontiguousarray(_mapped(rec))  # no copy: the mapped view is already C-ordered
        return arr.reshape(-1).view(np.uint8).data
    return to_array(rec).reshape(-1).view(np.uint8).data
