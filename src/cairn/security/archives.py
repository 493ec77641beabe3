"""Read archives the way model loaders read them, not the way the specification says they should be.

PyTorch's zip reader (miniz) takes each member's name from the central directory, skips the local header by
the lengths the *local* header gives, and loads members whose CRC is wrong; Python's ``zipfile`` refuses
both. A scanner that uses ``zipfile`` therefore never sees what PyTorch loads from such a file. This module
parses the central directory itself (zip64 and prepended data included), reports every disagreement as an
anomaly, and hands out member bytes as PyTorch would read them. Tar archives go through :mod:`tarfile`
(reading only, never extracting). Decompression is capped so that a bomb is an anomaly, not an outage.
"""

from __future__ import annotations

import bz2
import io
import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BOMB_RATIO",
    "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES",
    "ViewFile",
    "ZipAnomaly",
    "ZipMember",
    "decompress",
    "find_eocd",
    "member_bytes",
    "read_zip",
    "unsafe_member_name",
]

#: most bytes one compressed member or stream may expand to before it counts as a decompression bomb
MAX_MEMBER_BYTES = 1 << 30
#: most bytes all compressed members of one scanned file may expand to together
MAX_TOTAL_BYTES = 4 << 30
#: an expansion ratio above this, past the size limit, is a decompression bomb rather than a big file
BOMB_RATIO = 100
#: most entries a central directory may list
MAX_ENTRIES = 1_000_000
_EOCD = b"PK\x05\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"


@dataclass(frozen=True)
class ZipMember:
    """One central-directory entry and where its data really lies."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    data_offset: int
    local_name: str | None  # None when there is no valid local header

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True)
class ZipAnomaly:
    """Something a strict reader would reject or read differently from a lenient one."""

    member: str
    kind: str  # "name-mismatch" | "bad-local-header" | "overlap" | "truncated" | "bad-directory"
    # | "ambiguous-directory"
    detail: str


def find_eocd(data: bytes | memoryview) -> int:
    """Offset of the end-of-central-directory record, searched like readers do (last 64 KiB), or -1."""
    view = memoryview(data)
    start = max(0, len(view) - 22 - 0xFFFF)
    tail = bytes(view[start:])
    pos = tail.rfind(_EOCD)
    return -1 if pos < 0 else start + pos


def read_zip(data: bytes | memoryview) -> tuple[list[ZipMember], list[ZipAnomaly]]:
    """The members of the zip archive in ``data`` (central directory order) and every anomaly found."""
    view = memoryview(data)
    eocd = find_eocd(view)
    if eocd < 0 or eocd + 22 > len(view):
        return [], [ZipAnomaly("", "bad-directory", "no end-of-central-directory record")]
    _, _, _, count, cd_size, cd_offset, _ = struct.unpack("<HHHHIIH", view[eocd + 4 : eocd + 22])
    anomalies: list[ZipAnomaly] = []
    concat = 0
    if eocd >= 20 and bytes(view[eocd - 20 : eocd - 16]) == b"PK\x06\x07":  # zip64 locator
        rec = struct.unpack("<Q", view[eocd - 12 : eocd - 4])[0]
        rec = rec if bytes(view[rec : rec + 4]) == b"PK\x06\x06" else eocd - 76  # prepended data shifts it
        if rec >= 0 and rec + 56 <= len(view) and bytes(view[rec : rec + 4]) == b"PK\x06\x06":
            count, cd_size, cd_offset = struct.unpack("<QQQ", view[rec + 32 : rec + 56])
            eocd = rec
    if cd_offset + cd_size <= eocd:
        concat = eocd - (cd_offset + cd_size)  # bytes prepended to the archive, as zipfile allows
    if count > MAX_ENTRIES:
        return [], [ZipAnomaly("", "bad-directory", f"{count} entries exceed the limit of {MAX_ENTRIES}")]
    members = _directory(view, cd_offset + concat, count, concat, anomalies)
    if concat:
        # zipfile takes the gap before the end record for prepended data; PyTorch's reader (miniz) trusts
        # the declared offset. A second directory there means the two read different members: scan both.
        declared: list[ZipAnomaly] = []
        if bytes(view[cd_offset : cd_offset + 4]) == _CENTRAL:
            others = _directory(view, cd_offset, count, 0, declared)
            if others and [(m.name, m.data_offset) for m in others] != [
                (m.name, m.data_offset) for m in members
            ]:
                anomalies.append(
                    ZipAnomaly(
                        "",
                        "ambiguous-directory",
                        f"a central directory lies at the declared offset {cd_offset} and another "
                        f"{concat} bytes later; readers disagree on which members the archive holds",
                    )
                )
                anomalies.extend(declared)
                members = members + others
    _overlaps(members, anomalies)
    return members, anomalies


def _directory(
    view: memoryview, pos: int, count: int, shift: int, anomalies: list[ZipAnomaly]
) -> list[ZipMember]:
    """The ``count`` central-directory entries from ``pos``, local offsets moved by ``shift``."""
    members: list[ZipMember] = []
    for _ in range(count):
        if pos + 46 > len(view) or bytes(view[pos : pos + 4]) != _CENTRAL:
            anomalies.append(ZipAnomaly("", "bad-directory", f"central directory entry missing at {pos}"))
            break
        fields = struct.unpack("<HHHHHHIIIHHHHHII", view[pos + 4 : pos + 46])
        flags, method, crc, csize, size = fields[2], fields[3], fields[6], fields[7], fields[8]
        nlen, elen, clen, offset = fields[9], fields[10], fields[11], fields[15]
        raw_name = bytes(view[pos + 46 : pos + 46 + nlen])
        extra = bytes(view[pos + 46 + nlen : pos + 46 + nlen + elen])
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
        size, csize, offset = _zip64_extra(extra, size, csize, offset)
        pos += 46 + nlen + elen + clen
        members.append(_locate(view, name, method, flags, crc, csize, size, offset + shift, anomalies))
    return members


def _overlaps(members: list[ZipMember], anomalies: list[ZipAnomaly]) -> None:
    """Members whose data ranges overlap: how "non-recursive" zip bombs reuse one compressed kernel."""
    ranges = sorted(
        (m.data_offset, m.data_offset + m.compressed_size, m.name) for m in members if m.compressed_size
    )
    reach, owner = -1, ""
    for start, end, name in ranges:
        if start < reach:
            anomalies.append(ZipAnomaly(name, "overlap", f"its data overlaps that of {owner!r}"))
        if end > reach:
            reach, owner = end, name


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[i : i + 4])
        body = extra[i + 4 : i + 4 + length]
        if tag == 1:
            values = [struct.unpack("<Q", body[j : j + 8])[0] for j in range(0, len(body) - 7, 8)]
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
        i += 4 + length
    return size, csize, offset


def _locate(
    view: memoryview,
    name: str,
    method: int,
    flags: int,
    crc: int,
    csize: int,
    size: int,
    offset: int,
    anomalies: list[ZipAnomaly],
) -> ZipMember:
    """Find a member's data the way miniz does: skip the local header by its own name and extra lengths."""
    if offset + 30 > len(view) or bytes(view[offset : offset + 4]) != _LOCAL:
        anomalies.append(ZipAnomaly(name, "bad-local-header", f"no local file header at {offset}"))
        return ZipMember(name, method, flags, crc, csize, size, min(offset, len(view)), None)
    nlen, elen = struct.unpack("<HH", view[offset + 26 : offset + 30])
    local = bytes(view[offset + 30 : offset + 30 + nlen]).decode("utf-8", errors="replace")
    if local != name:
        anomalies.append(
            ZipAnomaly(
                name, "name-mismatch", f"local header names it {local!r}, the central directory {name!r}"
            )
        )
    start = offset + 30 + nlen + elen
    if start + csize > len(view):
        anomalies.append(
            ZipAnomaly(name, "truncated", f"data runs past the end of the archive ({csize} bytes)")
        )
    return ZipMember(name, method, flags, crc, csize, size, start, local)


def member_bytes(
    view: memoryview, member: ZipMember, *, check_crc: bool = True, limit: int | None = None
) -> tuple[bytes | memoryview, str]:
    """The member's content and a problem (``""`` if none): bomb, unsupported method, CRC mismatch."""
    limit = MAX_MEMBER_BYTES if limit is None else limit
    raw = view[member.data_offset : member.data_offset + member.compressed_size]
    if member.method == 0:
        data: bytes | memoryview = raw
        problem = ""
    else:
        out, problem = decompress(raw, {8: "deflate", 12: "bzip2", 14: "lzma"}.get(member.method, ""), limit)
        if out is None:
            return b"", problem
        data = out
    if check_crc and not problem and zlib.crc32(data) != member.crc:
        problem = "crc-mismatch"
    return data, problem


def decompress(raw: bytes | memoryview, method: str, limit: int | None = None) -> tuple[bytes | None, str]:
    """Decompress at most ``limit`` bytes.

    Returns ``(None, reason)`` for unsupported methods or broken streams; ``(partial, "bomb")`` when the
    output would exceed the limit at a ratio over :data:`BOMB_RATIO`, ``(partial, "too-large")`` when a
    stream is simply larger than the limit; ``(output, "")`` otherwise.
    """
    limit = MAX_MEMBER_BYTES if limit is None else limit
    view = memoryview(raw)
    try:
        if method in ("deflate", "gzip", "zlib"):
            out = b""
            start = 0
            while True:  # gzip files may hold several members back to back; gunzip reads them all
                z = zlib.decompressobj(-15 if method == "deflate" else 47)  # 47: gzip or zlib header
                part, problem, used = _feed(
                    view[start:], limit - len(out), z.decompress, _tail_of(z), _eof_of(z)
                )
                out += part
                start += used - len(z.unused_data)
                more = method == "gzip" and z.eof and bytes(view[start : start + 2]) == b"\x1f\x8b"
                if problem or not more:
                    return out, problem
        if method in ("bzip2", "lzma", "xz"):
            dec: bz2.BZ2Decompressor | lzma.LZMADecompressor = (
                bz2.BZ2Decompressor() if method == "bzip2" else lzma.LZMADecompressor()
            )
            part, problem, _ = _feed(view, limit, dec.decompress, lambda: b"", lambda: dec.eof)
            return part, problem
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        return None, f"broken {method} stream: {exc}"
    return None, f"unsupported compression method {method or 'unknown'}"


def _tail_of(z: Any) -> Callable[[], bytes]:
    return lambda: bytes(z.unconsumed_tail)


def _eof_of(z: Any) -> Callable[[], bool]:
    return lambda: bool(z.eof)


def _feed(
    view: memoryview,
    limit: int,
    step: Callable[[bytes, int], bytes],
    tail: Callable[[], bytes],
    eof: Callable[[], bool],
) -> tuple[bytes, str, int]:
    """Feed the input in 64 KiB pieces (a decompressor copies whatever input it has not used yet, so
    handing it a whole mapped member would copy all of it) until the output passes ``limit``.

    Returns the output, a problem (``""``, ``"bomb"`` or ``"too-large"``) and how many input bytes were
    handed over."""
    out = bytearray()
    pos = 0
    while pos < len(view) and not eof():
        pending = bytes(view[pos : pos + (1 << 16)])
        pos += len(pending)
        while pending and len(out) <= limit and not eof():
            out += step(pending, limit + 1 - len(out))
            pending = tail()
        if len(out) > limit:
            return bytes(out[:limit]), _overflow(limit, pos - len(pending)), pos
    return bytes(out), "", pos


def _overflow(produced: int, consumed: int) -> str:
    return "bomb" if produced > BOMB_RATIO * max(consumed, 1) else "too-large"


def unsafe_member_name(name: str) -> bool:
    """True when extracting ``name`` would write outside the destination folder."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return True
    return ".." in norm.split("/")


class ViewFile(io.RawIOBase):
    """A read-only, seekable file over a memoryview, so that tarfile reads a mapped file without a copy."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._pos += n
        return n
