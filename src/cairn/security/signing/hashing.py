"""Turn a model directory into a :class:`~cairn.security.signing.manifest.Manifest` by hashing it.

Steps: walk the directory (sorted, skipping ignored paths without descending into them, refusing symlinks
unless allowed and anything that is not a regular file) → cut each file into resources (whole files, or
``shard_size`` byte ranges; OMS records no shard for an empty file) → hash the resources in a thread pool
(``hashlib`` releases the GIL on large updates, so threads use every core) → a manifest in canonical order.

Ignore paths follow OMS: each is a path relative to the model root that matches itself and everything
below it (``.git`` covers ``.git/objects/...``); they are not glob patterns.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import IntegrityError, NotFoundError, UnsupportedFormatError, UsageError
from cairn.security.signing.errors import SymlinkRefusedError
from cairn.security.signing.manifest import MAX_RESOURCES, Manifest, Resource, Serialization

__all__ = ["default_workers", "hash_model", "list_files", "plan_resources"]

_CHUNK = 1 << 20


def default_workers() -> int:
    """One hashing thread per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _File:
    rel: str
    path: Path
    size: int


def list_files(root: Path, serialization: Serialization) -> list[_File]:
    """Every regular file under ``root`` that the manifest covers, as (relative posix path, size)."""
    if not root.exists():
        raise NotFoundError(f"{root}: no such model directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory (cairn signs model directories)")
    out: list[_File] = []
    stack = [("", root)]
    while stack:
        prefix, here = stack.pop()
        with os.scandir(here) as it:
            entries = sorted(it, key=lambda e: e.name, reverse=True)
        for entry in entries:
            rel = prefix + entry.name
            if serialization.ignores(rel):
                continue
            if "\\" in entry.name:
                raise UnsupportedFormatError("file name contains a backslash", path=rel)
            path = Path(entry.path)
            if entry.is_symlink():
                target = os.readlink(path)
                if not serialization.allow_symlinks:
                    raise SymlinkRefusedError(rel, target=target)
                if path.is_dir():
                    raise SymlinkRefusedError(
                        rel, target=target + " (a directory; only file links are followed)"
                    )
            mode = path.stat().st_mode if entry.is_symlink() else entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                stack.append((rel + "/", path))
            elif stat.S_ISREG(mode):
                out.append(_File(rel, path, path.stat().st_size))
            else:
                raise UnsupportedFormatError("not a regular file or directory", path=rel)
    out.sort(key=lambda f: tuple(f.rel.split("/")))
    return out


def plan_resources(files: list[_File], serialization: Serialization) -> list[tuple[_File, int, int]]:
    """The byte ranges to hash: one per file, or one per shard (none for an empty file, as OMS does)."""
    plan: list[tuple[_File, int, int]] = []
    if serialization.method == "files":
        if len(files) > MAX_RESOURCES:
            raise UsageError(f"{len(files)} files, more than the {MAX_RESOURCES} a manifest may hold")
        return [(f, 0, f.size) for f in files]
    for f in files:
        step = serialization.shard_size
        count = -(-f.size // step)
        if len(plan) + count > MAX_RESOURCES:
            raise UsageError(f"more than {MAX_RESOURCES} shards; use a larger shard size")
        plan.extend((f, start, min(start + step, f.size)) for start in range(0, f.size, step))
    return plan


def _hash_range(path: Path, start: int, end: int, size: int, *, follow_symlinks: bool = False) -> str:
    """sha256 of bytes ``[start, end)`` of ``path``, which must still be the regular file the walk saw.

    Opened with O_NOFOLLOW (unless links are allowed) and O_NONBLOCK, then checked with fstat, so that a
    file swapped for a symlink or a FIFO between the walk and the read fails instead of being followed or
    blocking forever; a file whose ``size`` changed while it was read fails too, rather than having a
    prefix of it signed.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise SymlinkRefusedError(path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsupportedFormatError("not a regular file (replaced while hashing?)", path=path)
        digest = hashlib.sha256()
        buf = bytearray(min(_CHUNK, max(end - start, 1)))
        view = memoryview(buf)
        pos = start
        while pos < end:
            n = os.preadv(fd, [view[: min(len(buf), end - pos)]], pos)
            if n == 0:
                raise IntegrityError(path, what="size while hashing", expected=end, actual=pos)
            digest.update(view[:n])
            pos += n
        now = os.fstat(fd).st_size
        if now != size:
            raise IntegrityError(path, what="size (changed while hashing)", expected=size, actual=now)
    finally:
        os.close(fd)
    return digest.hexdigest()


def _iter_hashed(
    plan: list[tuple[_File, int, int]], serialization: Serialization, workers: int
) -> Iterator[Resource]:
    def one(task: tuple[_File, int, int]) -> Resource:
        f, start, end = task
        name = f.rel if serialization.method == "files" else f"{f.rel}:{start}:{end}"
        return Resource(
            name,
            serialization.algorithm,
            _hash_range(f.path, start, end, f.size, follow_symlinks=serialization.allow_symlinks),
        )

    if workers <= 1 or len(plan) <= 1:
        yield from map(one, plan)
        return
    # largest first, so that one big shard does not start last and leave the other threads idle
    order = sorted(plan, key=lambda t: t[2] - t[1], reverse=True)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cairn-hash") as pool:
        yield from pool.map(one, order)


def hash_model(root: str | Path, serialization: Serialization, *, workers: int | None = None) -> Manifest:
    """Hash the model directory ``root`` as ``serialization`` says; the manifest is in canonical order."""
    root = Path(root)
    files = list_files(root, serialization)
    plan = plan_resources(files, serialization)
    resources = list(_iter_hashed(plan, serialization, workers or default_workers()))
    name = root.resolve().name
    return Manifest.build(name, serialization, resources)
