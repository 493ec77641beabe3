"""Atomic directory commits on a POSIX filesystem.

A checkpoint is written into a temporary sibling directory, every file is fsynced, the manifest is written
last, the directory is fsynced, renamed to its final name, and the parent is fsynced. Deletion renames to a
trash name first. So after a crash the parent holds only complete checkpoints plus ``.tmp-*`` / ``.trash-*``
leftovers, which :func:`clean_stale` removes.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from cairn.errors import ConflictError

__all__ = [
    "TMP_PREFIX",
    "TRASH_PREFIX",
    "clean_stale",
    "commit_dir",
    "fsync_dir",
    "new_temp_dir",
    "remove_dir",
]

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_temp_dir(final: Path) -> Path:
    """Create an empty temporary directory next to ``final`` (same filesystem, so rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def commit_dir(tmp: Path, final: Path, *, overwrite: bool = False) -> None:
    """Publish ``tmp`` as ``final``. With ``overwrite`` an existing ``final`` is replaced.

    Replacing is two renames (old → trash, tmp → final); a crash between them leaves no ``final`` but a
    complete ``.trash-`` copy of the old one, which is never picked as a checkpoint.
    """
    fsync_dir(tmp)
    if final.exists():
        if not overwrite:
            raise ConflictError(f"{final} already exists (pass overwrite=True to replace it)")
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
    """Remove temporary and trash directories left by crashed saves or deletions; return what was removed."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for child in parent.iterdir():
        if child.name.startswith((TMP_PREFIX, TRASH_PREFIX)) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed
