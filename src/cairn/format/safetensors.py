"""Read and write the safetensors format without trusting the file.

Layout (https://github.com/huggingface/safetensors, README "Format")::

    8 bytes   N, unsigned little-endian: size of the header
    N bytes   a UTF-8 JSON object: {"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets"}}
    rest      the byte buffer; data_offsets are [begin, end) relative to its start

Every limit is checked before anything is allocated: the header size against :data:`MAX_HEADER_SIZE` and the
file size, each tensor's byte length against ``prod(shape) * itemsize``, offsets against the buffer, and the
tensors must tile the buffer without overlap or holes, as the reference implementation requires.

The writer streams: it writes the header, then each tensor's bytes straight from the caller's buffers
(gathered into ``writev`` batches), so that a save costs no second copy of the state. A helper thread
hashes either the same buffers meanwhile, or (``write_safetensors_fd(hash_while=...)``) the written file
through a map of the page cache while the caller fsyncs it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import mmap
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from cairn.errors import FormatError, LimitExceededError

__all__ = [
    "DTYPE_SIZES",
    "MAX_DIMS",
    "MAX_HEADER_SIZE",
    "HeaderMemo",
    "SafetensorsHeader",
    "TensorInfo",
    "WriteResult",
    "parse_header",
    "read_header",
    "read_header_path",
    "write_safetensors",
    "write_safetensors_fd",
]

#: the reference implementation refuses headers over 100 MB; so do we
MAX_HEADER_SIZE = 100_000_000

#: the most dimensions a tensor may have (NumPy's limit)
MAX_DIMS = 64

#: bytes per element for every dtype name the format defines (sub-byte types are not supported here)
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "C64": 8,
    "F64": 8,
    "I64": 8,
    "U64": 8,
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # offset in the byte buffer
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int  # absolute file offset of the byte buffer
    data_size: int = 0

    def absolute(self, name: str) -> tuple[int, int]:
        """Absolute [begin, end) file offsets of a tensor's bytes."""
        info = self.tensors[name]
        return self.data_start + info.begin, self.data_start + info.end


@dataclass(frozen=True)
class WriteResult:
    size: int
    sha256: str
    header: SafetensorsHeader = field(repr=False)


def _header_length(prefix: bytes, *, path: str | None, file_size: int | None) -> int:
    if len(prefix) < 8:
        raise FormatError("file is shorter than the 8-byte safetensors header length", path=path)
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > MAX_HEADER_SIZE:
        raise LimitExceededError(f"header of {n} bytes exceeds the limit of {MAX_HEADER_SIZE}", path=path)
    if file_size is not None and 8 + n > file_size:
        raise FormatError(f"header length {n} runs past the end of the {file_size}-byte file", path=path)
    return int(n)


def parse_header(raw: bytes, *, data_size: int | None, path: str | None = None) -> SafetensorsHeader:
    """Validate a header's JSON. ``data_size`` is the byte buffer's length when known (None: a range read)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"header is not valid UTF-8 JSON: {exc}", path=path) from None
    if not isinstance(doc, dict):
        raise FormatError("header is not a JSON object", path=path)
    metadata: dict[str, str] = {}
    raw_meta = doc.pop("__metadata__", None)
    if raw_meta is not None:
        if not isinstance(raw_meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_meta.items()
        ):
            raise FormatError("__metadata__ must map strings to strings", path=path)
        metadata = dict(raw_meta)
    tensors: dict[str, TensorInfo] = {}
    for name, entry in doc.items():
        tensors[name] = _tensor_info(name, entry, path)
    spans = sorted(tensors.values(), key=lambda t: (t.begin, t.end))
    cursor = 0
    for t in spans:
        if t.begin != cursor:
            what = "overlaps the previous tensor" if t.begin < cursor else "leaves a hole before it"
            raise FormatError(f"tensor {t.name!r} at offset {t.begin} {what}", path=path)
        cursor = t.end
    if data_size is not None and cursor != data_size:
        raise FormatError(f"tensors cover {cursor} bytes but the data buffer holds {data_size}", path=path)
    header_len = len(raw)
    return SafetensorsHeader(tensors, metadata, 8 + header_len, cursor)


class HeaderMemo:
    """The last header parsed through it, so that several readers of one file (the hub's scan of an
    upload, its parameter counts, its lineage fingerprint) parse a large header once between them.

    :meth:`parse` behaves exactly like :func:`parse_header`; it answers from the memo when the header
    bytes (compared by their sha256, so the memo never keeps them) and ``data_size`` are those of the
    previous call, and parses otherwise. A header that failed to parse fails again with the same
    error, without being parsed again. It holds one parsed header at a time; ``parses`` counts the
    real parses. Not thread-safe: one memo serves one file on one thread at a time.
    """

    def __init__(self) -> None:
        self._key: tuple[int, bytes, int | None] | None = None
        self._result: SafetensorsHeader | FormatError | None = None
        self.parses = 0

    def parse(self, raw: bytes, *, data_size: int | None, path: str | None = None) -> SafetensorsHeader:
        key = (len(raw), hashlib.sha256(raw).digest(), data_size)
        if key != self._key or self._result is None:
            self.parses += 1
            try:
                self._result = parse_header(raw, data_size=data_size, path=path)
            except FormatError as exc:
                self._result = exc
            self._key = key
        found = self._result
        if isinstance(found, FormatError):  # a fresh error that names this caller's path
            raise type(found)(found.detail, path=path) from None
        return found


def _parse(
    raw: bytes, *, data_size: int | None, path: str | None, memo: HeaderMemo | None
) -> SafetensorsHeader:
    if memo is None:
        return parse_header(raw, data_size=data_size, path=path)
    return memo.parse(raw, data_size=data_size, path=path)


def _tensor_info(name: str, entry: object, path: str | None) -> TensorInfo:
    if not isinstance(entry, dict):
        raise FormatError(f"entry for tensor {name!r} is not an object", path=path)
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if dtype not in DTYPE_SIZES:
        raise FormatError(f"tensor {name!r} has unknown dtype {dtype!r}", path=path)
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(d) is int and 0 <= d < 2**62 for d in shape)
    ):
        raise FormatError(f"tensor {name!r} has an invalid shape {shape!r:.100}", path=path)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(o) is int and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise FormatError(f"tensor {name!r} has invalid data_offsets {offsets!r}", path=path)
    numel = math.prod(shape)
    expected = numel * DTYPE_SIZES[str(dtype)]
    if offsets[1] - offsets[0] != expected:
        raise FormatError(
            f"tensor {name!r} spans {offsets[1] - offsets[0]} bytes but {dtype}{shape} needs {expected}",
            path=path,
        )
    return TensorInfo(name, str(dtype), tuple(shape), offsets[0], offsets[1])


def read_header(
    f: BinaryIO,
    *,
    file_size: int | None = None,
    path: str | Path | None = None,
    memo: HeaderMemo | None = None,
) -> SafetensorsHeader:
    """Read and validate the header from the start of ``f``. ``file_size`` enables the full coverage check;
    ``memo``: parse through it (see :class:`HeaderMemo`)."""
    spath = None if path is None else str(path)
    n = _header_length(f.read(8), path=spath, file_size=file_size)
    raw = f.read(n)
    if len(raw) != n:
        raise FormatError(f"file ends inside the {n}-byte header", path=spath)
    data_size = None if file_size is None else file_size - 8 - n
    return _parse(raw, data_size=data_size, path=spath, memo=memo)


def read_header_path(path: str | Path, *, memo: HeaderMemo | None = None) -> SafetensorsHeader:
    p = Path(path)
    with p.open("rb") as f:
        return read_header(f, file_size=p.stat().st_size, path=p, memo=memo)


def build_header(
    entries: Iterable[tuple[str, str, tuple[int, ...]]], metadata: Mapping[str, str] | None = None
) -> tuple[bytes, SafetensorsHeader]:
    """Lay out tensors in the given order; return the encoded header (length prefix included)."""
    doc: dict[str, object] = {}
    if metadata:
        doc["__metadata__"] = dict(metadata)
    infos: dict[str, TensorInfo] = {}
    cursor = 0
    for name, dtype, shape in entries:
        if name == "__metadata__" or name in infos:
            raise FormatError(f"duplicate or reserved tensor name {name!r}")
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        infos[name] = TensorInfo(name, dtype, tuple(shape), cursor, cursor + nbytes)
        doc[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [cursor, cursor + nbytes]}
        cursor += nbytes
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment with spaces
    return struct.pack("<Q", len(raw)) + raw, SafetensorsHeader(
        infos, dict(metadata or {}), 8 + len(raw), cursor
    )


class SupportsWrite(Protocol):
    def write(self, data: Any, /) -> int: ...


#: most bytes, and most separate buffers, handed to one write call
_BATCH = 16 << 20
_IOV_MAX = 512


def _batches(views: Iterable[memoryview]) -> Iterator[list[memoryview]]:
    """The bytes of ``views`` in order, regrouped into lists of at most ``_BATCH`` bytes and ``_IOV_MAX``
    buffers: big tensors are cut, runs of small ones are written by one call (no bytes are copied)."""
    batch: list[memoryview] = []
    size = 0
    for view in views:
        pos = 0
        while pos < len(view):
            take = min(len(view) - pos, _BATCH - size)
            batch.append(view[pos : pos + take])
            size += take
            pos += take
            if size >= _BATCH or len(batch) >= _IOV_MAX:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


class _Hasher:
    """sha256 of the batches fed to it, in order, computed on a helper thread while the caller writes
    (hashlib releases the GIL), so a save costs about the slower of writing and hashing, not their sum."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.SimpleQueue[list[memoryview] | tuple[int, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cairn-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    if isinstance(item, tuple):
                        self._hash_file(*item)
                    else:
                        for view in item:
                            self._digest.update(view)
                except BaseException as exc:
                    self._error = exc

    def _hash_file(self, fd: int, size: int) -> None:
        """Hash a file's first ``size`` bytes through one small map of its page cache at a time (a map
        of the whole file would count every page in this process's resident memory)."""
        for pos in range(0, size, _BATCH):
            length = min(_BATCH, size - pos)
            with mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=pos) as window, memoryview(window) as view:
                self._digest.update(view)

    def feed(self, batch: list[memoryview]) -> None:
        self._queue.put(batch)

    def feed_file(self, fd: int, size: int) -> None:
        """Hash the file behind ``fd`` (open for reading) up to ``size``, after whatever was fed before."""
        self._queue.put((fd, size))

    def hexdigest(self) -> str:
        """Wait for every batch fed so far; the digest (or the hashing thread's error)."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _writev_all(fd: int, batch: list[memoryview]) -> None:
    """``os.writev`` until every byte of ``batch`` is written (a regular file may take fewer at once)."""
    i = 0
    while i < len(batch):
        n = os.writev(fd, batch[i : i + _IOV_MAX])
        if n <= 0:
            raise OSError(errno.EIO, "writev wrote nothing")
        while i < len(batch) and n >= len(batch[i]):
            n -= len(batch[i])
            i += 1
        if n:
            batch[i] = batch[i][n:]


def _prepare(
    tensors: Iterable[tuple[str, str, tuple[int, ...], memoryview]], metadata: Mapping[str, str] | None
) -> tuple[bytes, SafetensorsHeader, list[memoryview]]:
    items = list(tensors)
    prefix, header = build_header(((n, d, s) for n, d, s, _ in items), metadata)
    views = []
    for name, _dtype, _shape, buf in items:
        if buf.nbytes != header.tensors[name].nbytes:
            raise FormatError(
                f"tensor {name!r}: buffer holds {buf.nbytes} bytes, expected {header.tensors[name].nbytes}"
            )
        views.append(buf.cast("B") if buf.format != "B" or buf.ndim != 1 else buf)
    return prefix, header, views


def _stream(
    write: Callable[[list[memoryview]], None],
    tensors: Iterable[tuple[str, str, tuple[int, ...], memoryview]],
    metadata: Mapping[str, str] | None,
    file_fd: int | None = None,
    hash_while: Callable[[], None] | None = None,
) -> WriteResult:
    """Write the file batch by batch. Without ``file_fd`` the batches are hashed as they are written;
    with it, the written file is hashed once all is written, while ``hash_while()`` runs."""
    prefix, header, views = _prepare(tensors, metadata)
    hasher = _Hasher()
    size = 0
    try:
        for batch in _batches([memoryview(prefix), *views]):
            if file_fd is None:
                hasher.feed(batch)
            write(list(batch))  # the writer may trim its copy of the list; the hasher's stays whole
            size += sum(len(v) for v in batch)
        if file_fd is not None:
            hasher.feed_file(file_fd, size)
        if hash_while is not None:
            hash_while()
    finally:
        hasher.close()
    return WriteResult(size, hasher.hexdigest(), header)


def write_safetensors(
    f: SupportsWrite,
    tensors: Iterable[tuple[str, str, tuple[int, ...], memoryview]],
    metadata: Mapping[str, str] | None = None,
) -> WriteResult:
    """Stream tensors (name, dtype, shape, bytes) into ``f``; return size and sha256 of what was written.

    Each buffer must be a C-contiguous byte view whose length matches its dtype and shape. Bytes go to
    ``f`` straight from the caller's buffers while a helper thread hashes them.
    """

    def write(batch: list[memoryview]) -> None:
        for view in batch:
            f.write(view)

    return _stream(write, tensors, metadata)


def write_safetensors_fd(
    fd: int,
    tensors: Iterable[tuple[str, str, tuple[int, ...], memoryview]],
    metadata: Mapping[str, str] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    hash_while: Callable[[], None] | None = None,
) -> WriteResult:
    """:func:`write_safetensors` into a file descriptor, with one ``writev`` per batch of up to 16 MiB
    (small tensors are gathered, none copied). ``progress(n)`` is called with the bytes written so far.

    With ``hash_while`` (say, an fsync), ``fd`` must also be open for reading: once every byte is written,
    the file itself is memory-mapped and hashed while ``hash_while()`` runs. So the digest is that of the
    bytes in the file even if a caller's buffer changed while it was being written, and on a busy machine
    the writes, which keep the disk fed, do not wait for CPU behind the hash, which uses the CPU while the
    caller waits for the disk.
    """
    done = 0

    def write(batch: list[memoryview]) -> None:
        nonlocal done
        n = sum(len(v) for v in batch)
        _writev_all(fd, batch)
        done += n
        if progress is not None:
            progress(done)

    if hash_while is None:
        return _stream(write, tensors, metadata)
    return _stream(write, tensors, metadata, fd, hash_while)
