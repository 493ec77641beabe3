"""Tell a file's format from its bytes, never from its name: a ``.txt`` that holds a pickle is a pickle.

:func:`sniff` returns one :data:`Kind`. Formats that can be read two ways are resolved the way loaders
resolve them: ``torch.load`` takes a file for a zip only when it starts with a local file header, otherwise
it unpickles it, so a pickle with a zip appended is a pickle (and the scanner also reads the zip part).
"""

from __future__ import annotations

import re
import struct
import tarfile
from typing import Literal

from cairn.format.pickle_opcodes import OPCODES
from cairn.format.pickle_vm import walk

#: an opcode argument can run this far past the sniffed bytes before the walk notices truncation
MAX_ARG = 1 << 16

__all__ = ["Kind", "joblib_zfile_start", "looks_like_pickle", "sniff"]

Kind = Literal[
    "zip",
    "tar",
    "gzip",
    "bzip2",
    "xz",
    "zlib",
    "joblib-zfile",
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
# pickle.load accepts a stream that starts with any opcode (protocol 2+ usually start with PROTO, but
# nothing requires it): NEWTRUE + POP in front of a protocol 0 payload is as valid as MARK
_ANY_START = frozenset(OPCODES)
# what protocol 0/1 pickles usually start with; after any other opcode the first pickle must walk cleanly
# to count (text such as "hello." decodes to STOP, with errors on the way)
_P0_START = frozenset(b"(]})NIJKLMFSTUVXcdlpgiG")
#: bytes and opcodes of the first walk; a stream that is still valid at either limit counts as a pickle
_SNIFF_BYTES = 1 << 20
_SNIFF_OPS = 100_000


def unsupported_archive(head: bytes) -> str | None:
    """The name of an archive format cairn recognises but cannot open, or None."""
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            return name
    return None


def looks_like_pickle(data: bytes | memoryview) -> bool:
    """True for ``PROTO 2..5`` at the start, or a stream (starting with any opcode) whose first pickle
    decodes to STOP or is still valid when the sniffing limits of bytes or opcodes run out."""
    if len(data) < 2:
        return False
    if data[0] == 0x80:
        return data[1] <= 5
    if data[0] not in _ANY_START:
        return False
    result = walk(data[:_SNIFF_BYTES], max_ops=_SNIFF_OPS)
    if result.stopped and (result.ok or data[0] in _P0_START):
        return True
    last = result.errors[-1] if result.errors else ""
    if last.endswith(f"more than {_SNIFF_OPS} opcodes") or (
        ": truncated" in last and len(data) > _SNIFF_BYTES and result.end >= _SNIFF_BYTES - MAX_ARG
    ):
        return True  # padding that outlasts the sniff (N0 x 60,000 before the payload) is still a pickle
    # a broken protocol 0 stream still counts when it imports real-looking names (text that merely starts
    # with an opcode letter, such as Python source "class X(Module):", does not)
    return any(_DOTTED.match(g.module) and _DOTTED.match(g.name) for g in result.globals)


def _v7_tar(head: bytes) -> bool:
    """A pre-POSIX (V7) tar header: no magic, but a checksum that :mod:`tarfile` accepts."""
    if len(head) < 512 or head[156:157] not in (b"0", b"\x00", b"1", b"2", b"5"):
        return False
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


_ZFILE = re.compile(rb"ZF0[xX][0-9a-fA-F]{1,16}L? *")


def joblib_zfile_start(head: bytes | memoryview) -> int | None:
    """Where the zlib data of an old joblib "ZF" file starts (``ZF``, the length in hex padded with
    spaces to 19 bytes, optionally one more space), or None when ``head`` is no such file."""
    match = _ZFILE.match(bytes(head[:64]))
    if match is None or match.end() < 21 or match.end() > 22 or len(head) <= match.end():
        return None
    return match.end()


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
    if _v7_tar(head):
        return "tar"  # tarfile (and torch's legacy tar loader) accepts headers by checksum alone
    if joblib_zfile_start(head) is not None:
        return "joblib-zfile"
    if looks_like_pickle(data):
        return "pickle"
    if _safetensors(data):
        return "safetensors"
    if _onnx(data):
        return "onnx"
    return "unknown"
