"""Detect a file's format from its bytes, never from its name: the one place cairn does this.

Two questions, answered from the same signatures (:data:`MAGIC`, the tar magic at offset 257, the
safetensors length prefix, torch's legacy magic number):

* :func:`detect` / :func:`detect_bytes`: which cairn reader reads a checkpoint (table below);
* :func:`sniff`: how a *loader* would take arbitrary bytes, for the security scanner. It also names
  compression containers, archives cairn cannot open, V7 tar headers and joblib ZF files, and counts as a
  pickle any stream a loader would unpickle (every protocol, padding in front), so a ``.txt`` that holds
  a pickle is a pickle. Ambiguous files are resolved the way loaders resolve them: ``torch.load`` takes
  a file for a zip only when it starts with a local file header, otherwise it unpickles it, so a pickle
  with a zip appended is a pickle (and the scanner also reads the zip part).

:func:`detect`:

==================  =========================================================================
format              how it is recognised
==================  =========================================================================
``safetensors``     8-byte little-endian length ``N`` > 0, then ``{``
``npy``             ``\\x93NUMPY``
``gguf``            ``GGUF``
``hdf5``            ``\\x89HDF\\r\\n\\x1a\\n`` (Keras 2 ``.h5`` models and weights)
``zip`` families    ``PK\\x03\\x04`` (or an empty archive ``PK\\x05\\x06``); the member names decide:
                    ``*/data.pkl`` → ``torch-zip``; ``config.json`` + ``model.weights.h5`` →
                    ``keras``; every member ending ``.npy`` → ``npz``; otherwise ``zip``
``torch-legacy``    a protocol-2 pickle of torch's magic number ``0x1950a86a20f9469cfc6c``
``pickle``          ``\\x80`` + protocol 2–5 (joblib, scikit-learn, old torch inner pickles)
``onnx``            a protobuf whose first field is ``ir_version`` (tag 0x08) followed by a known
                    ModelProto field (see :mod:`cairn.format.onnx`)
``json``            ``{`` after optional whitespace (``config.json``, safetensors index files)
``tar``             ``ustar`` at offset 257 (PyTorch's pre-1.0 format: :mod:`cairn.format.torch_tar`)
==================  =========================================================================
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from pathlib import Path
from typing import Literal

from cairn.errors import FormatError, LimitExceededError, NotFoundError
from cairn.format.pickle_opcodes import OPCODES
from cairn.format.pickle_vm import walk

__all__ = [
    "MAGIC",
    "MAX_ARG",
    "TAR_MAGIC",
    "TAR_MAGIC_AT",
    "TORCH_LEGACY_MAGIC",
    "Kind",
    "detect",
    "detect_bytes",
    "has_tar_magic",
    "joblib_zfile_start",
    "looks_like_pickle",
    "magic_kind",
    "safetensors_length",
    "sniff",
    "unsupported_archive",
    "zip_entry_count",
    "zip_kind",
]

#: the number torch's legacy (non-zip) format pickles first, as a protocol-2 LONG1 of 10 bytes
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + TORCH_LEGACY_MAGIC.to_bytes(10, "little")
_PEEK = 64
_MAX_ZIP_MEMBERS = 1_000_000

#: formats told by a fixed prefix alone (the prefixes are disjoint, so their order does not matter)
MAGIC: tuple[tuple[bytes, Literal["npy", "gguf", "hdf5", "zip"]], ...] = (
    (b"\x93NUMPY", "npy"),
    (b"GGUF", "gguf"),
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
)
#: a POSIX (ustar) tar header has this magic at this offset
TAR_MAGIC_AT, TAR_MAGIC = 257, b"ustar"


def magic_kind(head: bytes) -> Literal["npy", "gguf", "hdf5", "zip"] | None:
    """``npy``, ``gguf``, ``hdf5`` or ``zip`` when ``head`` starts with that format's magic, else None."""
    for prefix, kind in MAGIC:
        if head.startswith(prefix):
            return kind
    return None


def has_tar_magic(head: bytes) -> bool:
    """Whether ``head`` (at least 262 bytes of the file) has the ustar magic of a POSIX tar header."""
    return head[TAR_MAGIC_AT : TAR_MAGIC_AT + len(TAR_MAGIC)] == TAR_MAGIC


def safetensors_length(head: bytes | memoryview) -> int | None:
    """The header length ``N`` of a safetensors file (8 bytes little-endian, then the JSON object's
    ``{``), or None when ``head`` does not start that way. Whether ``N`` fits is for the caller."""
    if len(head) < 9 or head[8] != ord("{"):
        return None
    return int.from_bytes(head[:8], "little")


def detect_bytes(head: bytes, size: int, *, tar_magic: bool = False) -> str:
    """The format name for a file of ``size`` bytes that starts with ``head`` (at least 64 bytes if any);
    ``tar_magic``: whether bytes 257–262 are ``ustar``."""
    kind = magic_kind(head)
    if kind is not None:
        return kind
    if head.startswith(_LEGACY_PREFIX):
        return "torch-legacy"
    n = safetensors_length(head)
    if n is not None and 0 < n <= size - 8:
        # before the pickle test: a header length such as 0x380 starts with the bytes 0x80 0x03. A
        # pickle cannot pass this: its bytes 2-7 would have to form a number below the file size
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if n:  # a lying N is reported by the reader, not hidden here
        return "safetensors"
    if head.lstrip()[:1] == b"{":
        return "json"
    if tar_magic:
        return "tar"
    if _looks_like_onnx(head):
        return "onnx"
    return "unknown"


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint) in every writer we know, then a known field
    if len(head) < 4 or head[0] != 0x08:
        return False
    pos = 1
    while pos < len(head) and head[pos] & 0x80:
        pos += 1
    pos += 1
    if pos >= len(head) or pos > 11:
        return False
    tag = head[pos]
    field_no, wire = tag >> 3, tag & 7
    return (field_no in (2, 3, 4, 6, 7, 8, 14, 20) and wire == 2) or (field_no == 5 and wire == 0)


def zip_entry_count(path: str | Path) -> int:
    """The most members the end-of-central-directory record (or its ZIP64 form) allows: its count, or
    what its directory size could hold. Read before ``zipfile`` builds one object per member."""
    p = Path(path)
    size = p.stat().st_size
    with p.open("rb") as f:
        tail_start = max(0, size - (22 + 0xFFFF))
        f.seek(tail_start)
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            raise FormatError("zip archive has no end-of-central-directory record", path=p)
        count = int.from_bytes(tail[at + 10 : at + 12], "little")
        cd_size = int.from_bytes(tail[at + 12 : at + 16], "little")
        locator = at - 20
        if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
            eocd64 = int.from_bytes(tail[locator + 8 : locator + 16], "little")
            if eocd64 + 56 > size:
                raise FormatError("ZIP64 end-of-central-directory record lies past the end", path=p)
            f.seek(eocd64)
            rec = f.read(56)
            if rec[:4] != b"PK\x06\x06":
                raise FormatError("ZIP64 end-of-central-directory record is missing", path=p)
            count = int.from_bytes(rec[32:40], "little")
            cd_size = int.from_bytes(rec[40:48], "little")
    # zipfile walks the directory by its byte size, not its count: each entry takes at least 46 bytes
    return max(count, cd_size // 46)


def zip_kind(path: str | Path) -> str:
    """Which zip-based format an archive is, from its member names (central directory only)."""
    declared = zip_entry_count(path)
    if declared > _MAX_ZIP_MEMBERS:
        raise LimitExceededError(
            f"zip archive declares {declared} members, over {_MAX_ZIP_MEMBERS}", path=path
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"not a readable zip archive: {exc}", path=path) from None
    if len(infos) > _MAX_ZIP_MEMBERS:
        raise FormatError(f"zip archive lists {len(infos)} members", path=path)
    names = [i.filename for i in infos]
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "torch-zip"
    if "config.json" in names and "model.weights.h5" in names:
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def detect(path: str | Path) -> str:
    """The format of the file or directory at ``path`` (``directory`` for a directory)."""
    p = Path(path)
    if p.is_dir():
        return "directory"
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(_PEEK)
            f.seek(TAR_MAGIC_AT)
            tar = f.read(len(TAR_MAGIC)) == TAR_MAGIC
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such file or directory") from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", path=p) from None
    kind = detect_bytes(head, size, tar_magic=tar)
    return zip_kind(p) if kind == "zip" else kind


# The scanner's view: how a loader would take the bytes (see the module docstring).

#: an opcode argument can run this far past the sniffed bytes before the walk notices truncation
MAX_ARG = 1 << 16

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
    # a JSON object right after the length; a length past the end is header abuse, judged by the check
    n = safetensors_length(data)
    return n is not None and n >= 2 and len(data) >= 10 and data[9] in b' "}\n\t\r'


def _onnx(data: bytes | memoryview) -> bool:
    """A protobuf ModelProto starts with ir_version (field 1, varint) and soon has a graph (field 7)."""
    from cairn.format.protobuf import fields

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
    kind = magic_kind(head)  # zip, npy, gguf, hdf5: disjoint from every prefix below
    if kind is not None:
        return kind
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
    if has_tar_magic(head):
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
