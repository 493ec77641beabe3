"""Atomic directory commits on a POSIX filesystem, and the writer lock of a checkpoint directory.

A checkpoint is written into a temporary sibling directory, every file is fsynced, the manifest is written
last, every directory inside is fsynced (deepest first), the directory is renamed to its final name, and
the parent is fsynced. Replacing an existing checkpoint swaps the two directories in one
``renameat2(RENAME_EXCHANGE)`` where the kernel offers it. Deletion renames to a trash name first. So after a
crash the parent holds only complete checkpoints plus ``.tmp-*`` / ``.trash-*`` leftovers, which
:func:`clean_stale` removes — but only under the directory's writer lock (:class:`WriterLock`), so a reader
that opens the directory never deletes a save that another process is writing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import secrets
import shutil
from pathlib import Path

from cairn.errors import ConflictError, UsageError

__all__ = [
    "LOCK_NAME",
    "TMP_PREFIX",
    "TRASH_PREFIX",
    "WriterLock",
    "clean_stale",
    "commit_dir",
    "fsync_dir",
    "makedirs_durable",
    "new_temp_dir",
    "remove_dir",
]

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
LOCK_NAME = ".cairn-writer.lock"
_RENAME_EXCHANGE = 2


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path) -> None:
    """``mkdir -p`` whose new entries survive a power cut: each created directory's parent is fsynced."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def new_temp_dir(final: Path) -> Path:
    """Create an empty temporary directory next to ``final`` (same filesystem, so rename is atomic)."""
    makedirs_durable(final.parent)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def _fsync_tree(root: Path) -> None:
    dirs = [Path(d) for d, _, _ in os.walk(root)]
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2). False where the system cannot."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True) if name else None
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP}:
        return False
    raise OSError(err, os.strerror(err), str(a))


def commit_dir(tmp: Path, final: Path, *, overwrite: bool = False, marker: str | None = None) -> None:
    """Publish ``tmp`` as ``final``. With ``overwrite`` an existing ``final`` holding ``marker`` is replaced.

    The replacement is one atomic exchange where available; otherwise two renames (old → trash, tmp →
    final), where a crash in between leaves a complete ``.trash-`` copy of the old checkpoint.
    """
    _fsync_tree(tmp)
    if final.exists():
        if not overwrite:
            raise ConflictError(f"{final} already exists (pass overwrite=True to replace it)")
        if marker is not None and not (final / marker).is_file():
            raise UsageError(f"{final} exists and is not a checkpoint; refusing to replace it")
        if _exchange(tmp, final):
            fsync_dir(final.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old checkpoint
            return
        trash = final.parent / f"{TRASH_PREFIX}{final.name}-{secrets.token_hex(4)}"
        os.rename(final, trash)
        os.rename(tmp, final)
        fsync_dir(final.parent)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        try:
            os.rename(tmp, final)
        except OSError as exc:  # another writer committed the same name first
            raise ConflictError(f"{final} appeared while saving: {exc}") from None
    fsync_dir(final.parent)


def remove_dir(path: Path) -> None:
    """Delete a committed directory so that no half of it is ever visible under its name."""
    trash = path.parent / f"{TRASH_PREFIX}{path.name}-{secrets.token_hex(4)}"
    os.rename(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def clean_stale(parent: Path) -> list[Path]:
    """Remove temporary and trash directories left by crashed saves or deletions; return what was removed.

    Call it only while holding the directory's :class:`WriterLock`. Each leftover is renamed to a trash
    name before removal, so a half-removed temporary directory can never be committed.
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for child in parent.iterdir():
        if child.name.startswith((TMP_PREFIX, TRASH_PREFIX)) and child.is_dir() and not child.is_symlink():
            target = child
            if child.name.startswith(TMP_PREFIX):
                target = parent / f"{TRASH_PREFIX}{child.name[len(TMP_PREFIX) :]}"
                os.rename(child, target)
            shutil.rmtree(target, ignore_errors=True)
            removed.append(child)
    return removed


class WriterLock:
    """An advisory exclusive lock on ``DIR/.cairn-writer.lock``, held for as long as the object lives.

    Only the holder writes checkpoints into the directory and cleans its leftovers; other processes can
    read it. The kernel releases the lock when the holder dies.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()
