"""A content-addressed blob directory: ``ROOT/ab/cd/<sha256>``, written by rename so readers never see a
partial blob."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cairn.store.base import BlobNotFoundError, check_oid, is_oid

__all__ = ["LocalBlobStore"]

_CHUNK = 1 << 20


class LocalBlobStore:
    """Blobs as files under ``root``. Safe for several processes on one machine: every write is a
    rename of a fully written temporary file inside ``root``."""

    #: staging files older than this are leftovers of a crash and are removed when a store is opened
    STALE_AFTER_S = 24 * 3600

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)
        self.clean_stale()

    def clean_stale(self, older_than_s: float | None = None) -> int:
        """Remove staging files and part directories not touched for ``older_than_s`` seconds (default
        :attr:`STALE_AFTER_S`; long enough that another process's upload in progress is never hit)."""
        import time

        cutoff = time.time() - (self.STALE_AFTER_S if older_than_s is None else older_than_s)
        removed = 0
        for entry in (self.root / "tmp").iterdir():
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _path(self, oid: str) -> Path:
        check_oid(oid)
        return self.root / oid[:2] / oid[2:4] / oid

    def put_file(self, oid: str, src: Path) -> None:
        dest = self._path(oid)
        if dest.exists():
            src.unlink(missing_ok=True)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(src, dest)
        except OSError:  # another filesystem: copy into our tmp, fsync, then rename
            fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
            try:
                with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
                    shutil.copyfileobj(inp, out, _CHUNK)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            src.unlink(missing_ok=True)

    def exists(self, oid: str) -> bool:
        return self._path(oid).is_file()

    def size(self, oid: str) -> int:
        try:
            return self._path(oid).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(oid) from None

    def iter_range(self, oid: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            f = self._path(oid).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(oid) from None
        return _read_range(f, start, end)

    def local_path(self, oid: str) -> Path | None:
        path = self._path(oid)
        return path if path.is_file() else None

    def delete(self, oid: str) -> None:
        self._path(oid).unlink(missing_ok=True)

    def iter_objects(self) -> Iterator[tuple[str, int, float]]:
        for first in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for second in sorted(first.glob("[0-9a-f][0-9a-f]")):
                for path in second.iterdir():
                    if not is_oid(path.name) or not path.name.startswith(first.name + second.name):
                        continue
                    try:
                        st = path.lstat()
                    except FileNotFoundError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        yield path.name, st.st_size, st.st_mtime

    def staging_dir(self) -> Path:
        """Where callers should write temporary files so that :meth:`put_file` is a rename."""
        return self.root / "tmp"


def _read_range(f: object, start: int, end: int | None) -> Iterator[bytes]:
    import io

    assert isinstance(f, io.BufferedReader)
    with f:
        f.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            chunk = f.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
