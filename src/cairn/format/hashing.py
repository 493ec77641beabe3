"""Hashing of files and streams: sha256 for manifests and large files, git's blob SHA-1 for small files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

__all__ = ["git_blob_sha1", "sha256_file", "sha256_stream"]

_CHUNK = 8 << 20


def sha256_stream(f: BinaryIO, *, chunk: int = _CHUNK) -> tuple[int, str]:
    """(size, hex sha256) of everything left in ``f``."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    while True:
        n = f.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        digest.update(view[:n])
        size += n
    return size, digest.hexdigest()


def sha256_file(path: str | Path) -> tuple[int, str]:
    """(size, hex sha256) of a file, read in chunks."""
    with Path(path).open("rb", buffering=0) as f:
        return sha256_stream(f)


def git_blob_sha1(data: bytes) -> str:
    """The object id git gives ``data`` as a blob (what the Hub calls a regular file's oid)."""
    h = hashlib.sha1(f"blob {len(data)}\0".encode(), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()
