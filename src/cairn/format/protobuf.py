"""A minimal, bounded protobuf wire-format reader, enough to walk an ONNX ``ModelProto`` without ``onnx``.

Only the wire format is decoded (varint, 64-bit, length-delimited, 32-bit); the caller knows which field
numbers hold sub-messages. Every length is checked against the bytes present before anything is sliced,
and a malformed message raises :class:`ValueError`, which callers turn into a finding or a scan error.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["fields", "varint"]


def varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``: ``(value, next position)``."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("varint longer than 10 bytes")


def fields(data: bytes | memoryview, limit: int | None = None) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field number, wire type, value)``: an int for varint and fixed types, bytes otherwise."""
    view = memoryview(data)
    pos = 0
    count = 0
    while pos < len(view):
        if limit is not None and count >= limit:
            return
        count += 1
        key, pos = varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = varint(view, pos)
            yield number, wire, value
        elif wire == 1:
            if pos + 8 > len(view):
                raise ValueError("truncated fixed64")
            yield number, wire, int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
        elif wire == 2:
            length, pos = varint(view, pos)
            if length > len(view) - pos:
                raise ValueError(f"length {length} runs past the end of the message")
            yield number, wire, view[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(view):
                raise ValueError("truncated fixed32")
            yield number, wire, int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
