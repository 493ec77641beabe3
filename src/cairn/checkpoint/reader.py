"""Read parts of a checkpoint back into tensors and structures, verifying every byte it reads.

Each safetensors file is read once into a single host buffer while its sha256 is computed; the header is
validated from that buffer and the tensors are views into it. Files are read in parallel (hashlib and file
reads release the GIL). Nothing is returned unless every file matched its manifest entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cairn.checkpoint.skeleton import decode
from cairn.checkpoint.tensors import from_bytes
from cairn.errors import FormatError, IntegrityError, LimitExceededError, NotFoundError
from cairn.format.manifest import Manifest
from cairn.format.safetensors import SafetensorsHeader, parse_header
from cairn.format.threads import run_all

__all__ = ["MAX_SKELETON_SIZE", "read_part", "read_parts"]

MAX_SKELETON_SIZE = 256 << 20
_CHUNK = 16 << 20


def _allocate(size: int, kind: str) -> tuple[Any, memoryview]:
    if kind == "torch":
        import torch

        buf = torch.empty(size, dtype=torch.uint8)
        return buf, buf.numpy().data
    arr = np.empty(size, dtype=np.uint8)
    return arr, arr.data


def _read_verified(root: Path, rel: str, manifest: Manifest, kind: str) -> tuple[Any, memoryview]:
    entry = manifest.files[rel]
    path = root / rel
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: file listed in the manifest is missing") from None
    try:
        size = os.fstat(fd).st_size
        if size != entry.size:
            raise IntegrityError(path, what="size", expected=entry.size, actual=size)
        buf, view = _allocate(size, kind)
        digest = hashlib.sha256()
        pos = 0
        while pos < size:
            n = os.readv(fd, [view[pos : pos + _CHUNK]])
            if n == 0:
                raise IntegrityError(path, what="size", expected=entry.size, actual=pos)
            digest.update(view[pos : pos + n])
            pos += n
    finally:
        os.close(fd)
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(path, what="sha256", expected=entry.sha256, actual=digest.hexdigest())
    return buf, view


def _header(view: memoryview, path: Path) -> SafetensorsHeader:
    if len(view) < 8:
        raise FormatError("file is shorter than the 8-byte safetensors header length", path=path)
    n = int.from_bytes(view[:8], "little")
    if 8 + n > len(view):
        raise FormatError(f"header length {n} runs past the end of the file", path=path)
    return parse_header(bytes(view[8 : 8 + n]), data_size=len(view) - 8 - n, path=str(path))


def _mapped(root: Path, rel: str, manifest: Manifest, kind: str) -> tuple[Any, memoryview]:
    """A private copy-on-write memory map of a file whose size matches the manifest (no hashing)."""
    path = root / rel
    entry = manifest.files[rel]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError(f"{path}: file listed in the manifest is missing") from None
    if size != entry.size:
        raise IntegrityError(path, what="size", expected=entry.size, actual=size)
    arr = np.memmap(path, dtype=np.uint8, mode="c") if size else np.empty(0, np.uint8)
    if kind == "torch":
        import torch

        return torch.from_numpy(arr), arr.data
    return arr, arr.data


def _tensor_file(root: Path, rel: str, manifest: Manifest, kind: str | None, verify: bool) -> dict[str, Any]:
    path = root / rel
    if kind is None:  # the writer records the framework in the header's metadata
        with path.open("rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            raw = f.read(min(n, 1 << 20))
        kind = "numpy" if b'"format":"np"' in raw else "torch"
    buf, view = _read_verified(root, rel, manifest, kind) if verify else _mapped(root, rel, manifest, kind)
    header = _header(view, path)
    base = header.data_start
    return {
        name: from_bytes(buf, base + t.begin, base + t.end, t.dtype, t.shape, kind)
        for name, t in header.tensors.items()
    }


def _skeleton(root: Path, rel: str, manifest: Manifest) -> Any:
    if manifest.files[rel].size > MAX_SKELETON_SIZE:
        raise LimitExceededError(f"skeleton is larger than {MAX_SKELETON_SIZE} bytes", path=root / rel)
    _, view = _read_verified(root, rel, manifest, "numpy")
    try:
        return json.loads(bytes(view).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"not valid UTF-8 JSON: {exc}", path=root / rel) from None


def read_part(
    root: Path, manifest: Manifest, name: str, *, kind: str | None = None, verify: bool = True
) -> Any:
    """The state of one part, rebuilt (tensors of ``kind``, or the kind recorded at save time)."""
    return read_parts(root, manifest, {name: kind}, verify=verify)[name]


def read_parts(
    root: Path, manifest: Manifest, kinds: Mapping[str, str | None], *, verify: bool = True
) -> dict[str, Any]:
    """Several parts at once (part name -> tensor kind or None), their files read and hashed in parallel.

    With ``verify=False`` files are memory-mapped and only their sizes are checked: faster, for trusted
    local disks; headers are still validated.
    """
    names = list(kinds)
    for name in names:
        if name not in manifest.parts:
            raise NotFoundError(
                f"{root}: the checkpoint has no {name!r} part (it has {sorted(manifest.parts)})"
            )
    jobs = [(name, rel) for name in names for rel in manifest.parts[name].files]
    jobs.sort(key=lambda job: -manifest.files[job[1]].size)  # biggest first balances the threads
    loaded = run_all(
        [functools.partial(_tensor_file, root, rel, manifest, kinds[name], verify) for name, rel in jobs],
        workers=4,
    )
    tensors: dict[str, dict[str, Any]] = {name: {} for name in names}
    for (name, _), found in zip(jobs, loaded, strict=True):
        tensors[name].update(found)
    out: dict[str, Any] = {}
    for name in names:
        part = manifest.parts[name]
        found = tensors[name]
        if len(found) != part.tensors:
            raise FormatError(
                f"part {name!r} should hold {part.tensors} tensors, its files hold {len(found)}"
            )
        for alias, target in part.aliases.items():
            if target not in found:
                raise FormatError(f"part {name!r}: alias {alias!r} points to missing tensor {target!r}")
            found[alias] = found[target]
        out[name] = (
            found if part.skeleton is None else decode(_skeleton(root, part.skeleton, manifest), found)
        )
    return out
