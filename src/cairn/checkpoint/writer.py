"""Write a snapshot as a checkpoint directory, atomically (see ``docs/spec/checkpoint.md``).

Steps: make a temporary directory → for each part, lay its tensors out (tied tensors once, widest dtypes
first so every tensor stays aligned), stream them into safetensors files (sharded above
``max_shard_size``) with early writeback, then fsync while a helper thread hashes the file's bytes →
write JSON skeletons, ``config.json`` → write the
manifest last → rename into place → record the files in the verified-file stat cache (:mod:`cairn.format.statcache`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cairn import __version__
from cairn.checkpoint.atomic import commit_dir, new_temp_dir
from cairn.checkpoint.snapshot import PartState, Snapshot
from cairn.checkpoint.tensors import TensorView, storage_key, view_of
from cairn.checkpoint.writeback import BackgroundWriteback
from cairn.format.hashing import sha256_stream
from cairn.format.manifest import FORMAT_VERSION, MANIFEST_NAME, FileEntry, Manifest, PartEntry
from cairn.format.safetensors import DTYPE_SIZES, write_safetensors_fd
from cairn.format.statcache import default_cache, settled_stamps
from cairn.format.threads import run_all

__all__ = ["DEFAULT_MAX_SHARD_SIZE", "write_checkpoint"]

#: tensor files written at once (each is hashed by a helper thread while it is fsynced)
_WRITERS = 2

#: the Hugging Face default for sharding weights
DEFAULT_MAX_SHARD_SIZE = 5 * 1000**3


def _layout(part: PartState) -> tuple[list[tuple[str, TensorView]], dict[str, str]]:
    views: list[tuple[str, TensorView]] = []
    aliases: dict[str, str] = {}
    seen: dict[tuple[Any, ...], str] = {}
    for key, tensor in part.tensors.items():
        ident = storage_key(tensor)
        if ident is not None and ident in seen:
            aliases[key] = seen[ident]
            continue
        if ident is not None:
            seen[ident] = key
        views.append((key, view_of(tensor)))
    order = {key: i for i, (key, _) in enumerate(views)}
    views.sort(key=lambda kv: (-DTYPE_SIZES[kv[1].dtype], order[kv[0]]))
    return views, aliases


def _shards(views: list[tuple[str, TensorView]], max_size: int) -> list[list[tuple[str, TensorView]]]:
    shards: list[list[tuple[str, TensorView]]] = [[]]
    size = 0
    for item in views:
        if shards[-1] and size + item[1].nbytes > max_size:
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += item[1].nbytes
    return shards


class _DirWriter:
    """Writes the files of one checkpoint; tensor files are written by a small thread pool in parallel."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, FileEntry] = {}
        self._pending: list[tuple[str, int, Callable[[], FileEntry]]] = []

    def tensors(self, rel: str, views: list[tuple[str, TensorView]], fmt: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        nbytes = sum(v.nbytes for _, v in views)
        self._pending.append((rel, nbytes, functools.partial(self._write_tensors, path, views, fmt)))

    @staticmethod
    def _write_tensors(path: Path, views: list[tuple[str, TensorView]], fmt: str) -> FileEntry:
        # read as well as write: the file itself is hashed, so the manifest describes its bytes exactly
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            writeback = BackgroundWriteback(fd)

            def durable() -> None:
                writeback.close()
                os.fsync(fd)

            try:
                result = write_safetensors_fd(
                    fd,
                    ((k, v.dtype, v.shape, v.data) for k, v in views),
                    metadata={"format": fmt},
                    progress=writeback.advance,
                    hash_while=durable,  # the hash runs while the disk catches up
                )
            finally:
                writeback.close()
        finally:
            os.close(fd)
        return FileEntry(result.size, result.sha256)

    def finish(self) -> None:
        """Write the tensor files, biggest first, on parallel threads; raise the first error."""
        pending, self._pending = self._pending, []
        pending.sort(key=lambda job: -job[1])
        entries = run_all([job for _, _, job in pending], workers=_WRITERS)
        self.files.update({rel: entry for (rel, _, _), entry in zip(pending, entries, strict=True)})

    def json(self, rel: str, doc: Any) -> None:
        data = json.dumps(doc, indent=1, allow_nan=False).encode("utf-8")
        self.raw(rel, data)

    def raw(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with path.open("rb") as f:
            size, digest = sha256_stream(f)
        self.files[rel] = FileEntry(size, digest)


def _write_part(w: _DirWriter, part: PartState, max_shard_size: int) -> PartEntry:
    views, aliases = _layout(part)
    fmt = "pt" if part.kind == "torch" else "np"
    total = sum(v.nbytes for _, v in views)
    files: list[str] = []
    index: str | None = None
    if part.name == "model":
        shards = _shards(views, max_shard_size)
        if len(shards) == 1:
            files = ["model.safetensors"]
            w.tensors(files[0], views, fmt)
        else:
            n = len(shards)
            weight_map: dict[str, str] = {}
            for i, shard in enumerate(shards, 1):
                rel = f"model-{i:05d}-of-{n:05d}.safetensors"
                w.tensors(rel, shard, fmt)
                files.append(rel)
                weight_map.update({k: rel for k, _ in shard})
            index = "model.safetensors.index.json"
            w.json(index, {"metadata": {"total_size": total}, "weight_map": weight_map})
    elif views:
        files = [f"{part.name}.safetensors"]
        w.tensors(files[0], views, fmt)
    skeleton: str | None = None
    if part.skeleton is not None:
        skeleton = f"{part.name}.json"
        w.json(skeleton, part.skeleton)
    return PartEntry(tuple(files), skeleton, index, len(views), total, aliases)


def write_checkpoint(
    final: Path, snap: Snapshot, *, max_shard_size: int = DEFAULT_MAX_SHARD_SIZE, overwrite: bool = False
) -> Manifest:
    """Write ``snap`` to ``final`` atomically and return its manifest."""
    tmp = new_temp_dir(final)
    try:
        w = _DirWriter(tmp)
        parts = {part.name: _write_part(w, part, max_shard_size) for part in snap.parts}
        if snap.config is not None:
            w.json("config.json", snap.config)
        w.finish()
        created = _dt.datetime.now(_dt.UTC).isoformat().replace("+00:00", "Z")
        manifest = Manifest(FORMAT_VERSION, created, parts, dict(w.files), snap.metadata, __version__)
        w.raw(MANIFEST_NAME, manifest.dumps())
        del w.files[MANIFEST_NAME]
        commit_dir(tmp, final, overwrite=overwrite, marker=MANIFEST_NAME)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remember(final, manifest.files)
    return manifest


def _remember(final: Path, files: Mapping[str, FileEntry]) -> None:
    """Record the files just committed in the stat cache, so that loading them next need not re-hash
    bytes that cairn itself wrote. Files changed too recently to be recorded safely are waited for when
    they are big enough for a re-hash to cost more than the wait (see
    :func:`~cairn.format.statcache.settled_stamps`); small ones are simply left out."""
    cache = default_cache()
    if cache is None:
        return
    try:
        record = cache.fresh(final)  # every file is new: entries of a checkpoint it replaced go
        stamps = settled_stamps(final, {rel: entry.size for rel, entry in files.items()})
        for rel, (stamp, taken) in stamps.items():
            if stamp.size == files[rel].size:
                record.add(rel, stamp, files[rel].sha256, taken_ns=taken)
        record.save()
    except OSError:  # the checkpoint is committed; the cache is only an optimisation
        return
