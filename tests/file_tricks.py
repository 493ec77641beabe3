"""Helpers that tamper with files the way an attacker or bit rot would, for the tests of checks that must
notice (a module with a unique name: test modules never import ``conftest``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["flip_last_byte_keep_mtime"]


def flip_last_byte_keep_mtime(path: Path) -> None:
    """Invert the file's last byte and put its access and modification times back, so that only its
    ctime (and its content) tell that it changed."""
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
