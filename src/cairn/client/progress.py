"""Progress reporting for transfers: a protocol the library calls, a silent default, and a one-line
bar on a text stream (stderr on a terminal; the CLI decides, never in ``--json`` mode)."""

from __future__ import annotations

import threading
import time
from typing import Protocol, TextIO

__all__ = ["Bar", "Progress", "silent"]


class Progress(Protocol):
    def start(self, total_bytes: int, total_files: int) -> None: ...

    def advance(self, nbytes: int, *, done_file: bool = False) -> None: ...

    def close(self) -> None: ...


class _Silent:
    def start(self, total_bytes: int, total_files: int) -> None:
        pass

    def advance(self, nbytes: int, *, done_file: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def silent() -> Progress:
    return _Silent()


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Bar:
    """``label [#####.....] 45% 12.0 MiB/26.7 MiB 3/8 files 40.1 MiB/s``, redrawn at most 10 times a
    second from any thread."""

    def __init__(self, stream: TextIO, label: str, *, width: int = 30) -> None:
        self.stream, self.label, self.width = stream, label, width
        self.total = self.done = self.files = self.files_done = 0
        self._lock = threading.Lock()
        self._t0 = self._last = 0.0

    def start(self, total_bytes: int, total_files: int) -> None:
        self.total, self.files = total_bytes, total_files
        self._t0 = time.monotonic()
        self._draw()

    def advance(self, nbytes: int, *, done_file: bool = False) -> None:
        with self._lock:
            self.done += nbytes
            self.files_done += int(done_file)
            now = time.monotonic()
            if now - self._last >= 0.1 or done_file:
                self._last = now
                self._draw()

    def _draw(self) -> None:
        frac = min(1.0, self.done / self.total) if self.total else 1.0
        fill = int(frac * self.width)
        rate = self.done / max(1e-6, time.monotonic() - self._t0) if self._t0 else 0.0
        self.stream.write(
            f"\r{self.label} [{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%} "
            f"{_size(self.done)}/{_size(self.total)} {self.files_done}/{self.files} files {_size(rate)}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        with self._lock:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
