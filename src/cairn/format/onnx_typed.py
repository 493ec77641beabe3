"""Values of ONNX initializers stored in TensorProto's typed fields instead of ``raw_data``.

``onnx.helper.make_tensor`` (and older exporters) write values as repeated protobuf fields: varints in
``int32_data`` (5: INT32/16/8, UINT16/8, BOOL, and the bits of FLOAT16/BFLOAT16), ``int64_data`` (7) and
``uint64_data`` (11: UINT32/64), fixed 4/8-byte values in ``float_data`` (4) and ``double_data`` (10).
Each may be packed (one length-delimited field) or unpacked (one field per value), and a writer may
split a packed list into several fields. Such values have no byte offset to map, so the reader records
the TensorProto message (``offset`` + ``encoded_length``) and the field in ``encoding``
(``onnx-typed:<field>``); :func:`decode` walks that message again when ``stats``/``diff`` ask, in bounded
pieces (packed varints are decoded with numpy a window at a time), checking every value against its
dtype's range and the number of values against the shape.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np

from cairn.errors import FormatError
from cairn.format.inspection import TensorRecord

__all__ = ["ENCODING", "TYPED_FIELD", "decode"]

ENCODING = "onnx-typed"
#: dtype → the TensorProto field that holds its values when ``raw_data`` is absent (onnx.proto)
TYPED_FIELD: dict[str, int] = {
    "F32": 4,
    "F64": 10,
    "I64": 7,
    "U32": 11,
    "U64": 11,
    **dict.fromkeys(("I32", "I16", "I8", "U16", "U8", "BOOL", "F16", "BF16"), 5),
}
#: dtype → (numpy storage dtype, smallest and largest value its varint may carry)
_VARINT_RANGE: dict[str, tuple[str, int, int]] = {
    "I64": ("i8", -(1 << 63), (1 << 63) - 1),
    "I32": ("i4", -(1 << 31), (1 << 31) - 1),
    "I16": ("i2", -(1 << 15), (1 << 15) - 1),
    "I8": ("i1", -128, 127),
    "U16": ("u2", 0, 0xFFFF),
    "U8": ("u1", 0, 0xFF),
    "BOOL": ("bool", 0, 1),
    "F16": ("u2", 0, 0xFFFF),  # the float16 bits; viewed as float16 below
    "BF16": ("u2", 0, 0xFFFF),  # BF16 is handled as its uint16 bits everywhere
    "U32": ("u4", 0, 0xFFFFFFFF),
    "U64": ("u8", 0, (1 << 64) - 1),
}
_WINDOW = 1 << 20  # bytes of packed varints decoded at a time
_UNPACKED_BATCH = 1 << 16  # unpacked values gathered before they are converted


def _fail(rec: TensorRecord, message: str) -> FormatError:
    return FormatError(f"initializer {rec.name!r}: {message}", path=rec.file)


def _varints(rec: TensorRecord, mm: mmap.mmap, start: int, end: int) -> Iterator[np.ndarray]:
    """Packed varints in ``mm[start:end]`` → uint64 arrays, one window of bytes (copied) at a time."""
    at = start
    size = max(_WINDOW, 16)  # any 10 bytes of valid varints hold the end of one
    while at < end:
        window = np.frombuffer(mm[at : min(end, at + size)], dtype=np.uint8)
        ends = np.flatnonzero(window < 0x80)
        if ends.size == 0:
            if at + window.size < end:
                raise _fail(rec, "a varint is longer than 10 bytes")
            raise _fail(rec, "packed varints end inside a value")
        window = window[: int(ends[-1]) + 1]
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts + 1
        if int(lengths.max()) > 10:
            raise _fail(rec, "a varint is longer than 10 bytes")
        position = np.arange(window.size) - np.repeat(starts, lengths)
        parts = (window & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
        yield np.add.reduceat(parts, starts)
        at += window.size


def _as_dtype(rec: TensorRecord, values: np.ndarray) -> np.ndarray:
    """Decoded uint64 varints → the record's storage dtype, refusing values out of its range."""
    storage, low, high = _VARINT_RANGE[rec.dtype]
    if low < 0:
        signed = values.view(np.int64)  # int32 and int64 are sign-extended to 64 bits on the wire
        bad = (signed < low) | (signed > high)
        out = signed
    else:
        bad = values > np.uint64(high)
        out = values
    if bool(bad.any()):
        raise _fail(rec, f"value out of range for {rec.dtype}")
    result = out.astype(storage)
    return result.view(np.float16) if rec.dtype == "F16" else result


def _fixed(rec: TensorRecord, payload: bytes, field: int) -> np.ndarray:
    dtype = np.dtype("<f4" if field == 4 else "<f8")
    if len(payload) % dtype.itemsize:
        raise _fail(rec, f"packed field of {len(payload)} bytes is not a whole number of values")
    return np.frombuffer(payload, dtype=dtype).astype(dtype.newbyteorder("="))


def _field_values(rec: TensorRecord, mm: mmap.mmap, field: int) -> Iterator[np.ndarray]:
    """The field's values in order, in batches, whether packed, unpacked, or a mix."""
    from cairn.format.onnx import _Reader  # the same bounded field walker the reader uses

    assert rec.offset is not None and rec.file is not None
    r = _Reader(mm, rec.file)
    wire_single = 5 if field == 4 else 1 if field == 10 else 0
    single: list[int] = []  # unpacked varints, or start offsets of unpacked fixed values
    for number, wire, start, end in r.fields(rec.offset, rec.offset + rec.encoded_length):
        if number != field:
            continue
        if wire == 2:
            if single:
                yield from _flush(rec, mm, field, single)
            if field in (4, 10):
                for at in range(start, end, _WINDOW):
                    yield _fixed(rec, mm[at : min(end, at + _WINDOW)], field)
            else:
                for values in _varints(rec, mm, start, end):
                    yield _as_dtype(rec, values)
        elif wire == wire_single:
            single.append(start)
            if len(single) >= _UNPACKED_BATCH:
                yield from _flush(rec, mm, field, single)
        else:
            raise _fail(rec, f"field {field} has wire type {wire}")
    if single:
        yield from _flush(rec, mm, field, single)


def _flush(rec: TensorRecord, mm: mmap.mmap, field: int, single: list[int]) -> Iterator[np.ndarray]:
    if field in (4, 10):
        size = 4 if field == 4 else 8
        out = _fixed(rec, b"".join(mm[s : s + size] for s in single), field)
    else:  # unpacked varints were decoded by the walker: ``single`` holds their values
        out = _as_dtype(rec, np.array(single, dtype=np.uint64))
    single.clear()
    yield out


def decode(rec: TensorRecord) -> Iterator[np.ndarray]:
    """The record's values in C order, in batches of its storage dtype (BF16 as uint16 bits)."""
    if rec.file is None or rec.offset is None or rec.encoding is None:
        raise _fail(rec, "has no encoded location")
    field = int(rec.encoding.rpartition(":")[2])
    with open(rec.file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if rec.offset + rec.encoded_length > len(mm):
            raise _fail(rec, "its message lies past the end of the file")
        seen = 0
        for values in _field_values(rec, mm, field):
            seen += values.size
            if seen > rec.numel:
                raise _fail(rec, f"holds more than the {rec.numel} values its shape needs")
            yield values
    if seen != rec.numel:
        raise _fail(rec, f"holds {seen} values but its shape needs {rec.numel}")
