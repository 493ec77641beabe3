"""Start the disk writeback of a file while it is still being written (Linux ``sync_file_range``).

A durable save ends with fsync, which otherwise waits for every dirty page at once. Asking the kernel to
begin writing each finished range early overlaps the disk with the rest of the save (serialising, hashing),
so the final fsync has little left to do. Where the call is unavailable this is a plain file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, BinaryIO

__all__ = ["EarlyWriteback"]

_SYNC_FILE_RANGE_WRITE = 2
_STEP = 64 << 20


def _libc_sync_file_range() -> Any:
    name = ctypes.util.find_library("c")
    fn = getattr(ctypes.CDLL(name, use_errno=True), "sync_file_range", None) if name else None
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return fn


_sync_file_range = _libc_sync_file_range()


class EarlyWriteback:
    """A binary file wrapper whose ``write`` starts writeback of every full 64 MiB written so far."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._written = 0
        self._started = 0

    def write(self, data: Any) -> int:
        n = self._f.write(data)
        self._written += len(memoryview(data).cast("B"))
        if _sync_file_range is not None and self._written - self._started >= _STEP:
            self._f.flush()
            _sync_file_range(
                self._f.fileno(), self._started, self._written - self._started, _SYNC_FILE_RANGE_WRITE
            )
            self._started = self._written
        return n if n is not None else 0

    def flush(self) -> None:
        self._f.flush()

    def fileno(self) -> int:
        return self._f.fileno()

    def fsync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
