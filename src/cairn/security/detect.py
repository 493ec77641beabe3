"""Tell a file's format from its bytes, never from its name: a ``.txt`` that holds a pickle is a pickle.

:func:`sniff` returns one :data:`Kind`. Formats that can be read two ways are resolved the way loaders
resolve them: ``torch.load`` takes a file for a zip only when it starts with a local file header, otherwise
it unpickles it, so a pickle with a zip appended is a pickle (and the scanner also reads the zip part).
"""

from __future__ import annotations

import re
import struct
from typing import Literal

from cairn.format.pickle_vm import walk

__all__ = ["Kind", "looks_like_pickle", "sniff"]

Kind = Literal[
    "zip",
    "tar",
    "gzip",
    "bzip2",
    "xz",
    "zlib",
    "unsupported-archive",
    "pickle",
    "npy",
    "safetensors",
    "gguf",
    "hdf5",
    "onnx",
    "empty",
    "unknown",
]

_UNSUPPORTED = (
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"MSCF", "cab"),
)
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# opcodes a protocol 0/1 pickle can start with (protocol 2+ start with PROTO)
_P0_START = set(b"(]})NIJKLMFSTUVXcdlpgiG")


def unsupported_archive(head: bytes) -> str | None:
    """The name of an archive format cairn recognises but cannot open, or None."""
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            return name
    return None


def looks_like_pickle(data: bytes | memoryview) -> bool:
    """True for ``PROTO 2..5`` at the start, or a protocol 0/1 stream whose first pickle decodes to STOP."""
    if len(data) < 2:
        return False
    if data[0] == 0x80:
        return data[1] <= 5
    if data[0] not in _P0_START:
        return False
    result = walk(data[: 1 << 20], max_ops=100_000)
    if result.stopped:
        return True
    # a broken protocol 0 stream still counts when it imports real-looking names (text that merely starts
    # with an opcode letter, such as Python source "class X(Module):", does not)
    return any(_DOTTED.match(g.module) and _DOTTED.match(g.name) for g in result.globals)


def _safetensors(data: bytes | memoryview) -> bool:
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    # a JSON object right after the length; a length past the end is header abuse, judged by the check
    return n >= 2 and data[8] == ord("{") and data[9] in b' "}\n\t\r'


def _onnx(data: bytes | memoryview) -> bool:
    """A protobuf ModelProto starts with ir_version (field 1, varint) and soon has a graph (field 7)."""
    from cairn.security.protobuf import fields

    if len(data) < 4 or data[0] != 0x08:
        return False
    try:
        numbers = {num for num, _, _ in fields(data, limit=64)}
    except ValueError:
        return False
    return 7 in numbers or 8 in numbers


def sniff(data: bytes | memoryview) -> Kind:
    """The format of ``data``, from its content alone."""
    head = bytes(data[:512])
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        return "xz"  # xz, or the legacy .lzma container that joblib also writes
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"  # joblib's compress=N files are one zlib stream
    if unsupported_archive(head):
        return "unsupported-archive"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if looks_like_pickle(data):
        return "pickle"
    if _safetensors(data):
        return "safetensors"
    if _onnx(data):
        return "onnx"
    return "unknown"
