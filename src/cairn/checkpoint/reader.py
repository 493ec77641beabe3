"""Read parts of a checkpoint back into tensors and structures, verifying every byte it reads.

Each safetensors file is mapped privately (copy-on-write) and, unless ``verify=False``, hashed in full
before anything else happens; the header is validated from the map and the tensors are views into it. Files are read in parallel (hashlib and file
reads release the GIL). Nothing is returned unless every file matched its manifest entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
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


def _open_regular(root: Path, rel: str, manifest: Manifest) -> tuple[int, int]:
    """Open a listed file without following a final symlink or blocking on a FIFO; check it is regular
    and has the size the manifest lists. Returns (fd, size)."""
    path = root / rel
    entry = manifest.files[rel]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: file listed in the manifest is missing") from None
    except OSError as exc:  # ELOOP: a symlink
        raise FormatError(f"cannot open as a regular file: {exc.strerror}", path=path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FormatError("not a regular file", path=path)
    if st.st_size != entry.size:
        os.close(fd)
        raise IntegrityError(path, what="size", expected=entry.size, actual=st.st_size)
    return fd, st.st_size


def _read_verified(root: Path, rel: str, manifest: Manifest) -> np.ndarray[Any, Any]:
    """The file as a private memory map, hashed in full; IntegrityError unless it matches the manifest.

    Hashing through the map reads the page cache directly: on machines where first-touch page faults are
    expensive this is several times faster than reading into a fresh buffer, and the hashed pages are the
    ones the tensors then use.
    """
    entry = manifest.files[rel]
    path = root / rel
    buf = _mapped(root, rel, manifest)
    digest = hashlib.sha256()
    view = buf.data
    for pos in range(0, len(view), _CHUNK):
        digest.update(view[pos : pos + _CHUNK])
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(path, what="sha256", expected=entry.sha256, actual=digest.hexdigest())
    return buf


def _mapped(root: Path, rel: str, manifest: Manifest) -> np.ndarray[Any, Any]:
    """A private copy-on-write memory map of a file whose size matches the manifest (no hashing)."""
    fd, size = _open_regular(root, rel, manifest)
    try:
        if not size:
            return np.empty(0, np.uint8)
        with os.fdopen(os.dup(fd), "rb") as f:
            return np.memmap(f, dtype=np.uint8, mode="c", shape=(size,))
    finally:
        os.close(fd)


def _header(view: memoryview, path: Path) -> SafetensorsHeader:
    if len(view) < 8:
        raise FormatError("file is shorter than the 8-byte safetensors header length", path=path)
    n = int.from_bytes(view[:8], "little")
    if 8 + n > len(view):
        raise FormatError(f"header length {n} runs past the end of the file", path=path)
    return parse_header(bytes(view[8 : 8 + n]), data_size=len(view) - 8 - n, path=str(path))


def _tensor_file(root: Path, rel: str, manifest: Manifest, kind: str | None, verify: bool) -> dict[str, Any]:
    path = root / rel
    buf = _read_verified(root, rel, manifest) if verify else _mapped(root, rel, manifest)
    header = _header(buf.data, path)
    if kind is None:  # the writer records the framework in the header's metadata
        kind = "numpy" if header.metadata.get("format") == "np" else "torch"
    source: Any = buf
    if kind == "torch":
        import torch

        source = torch.from_numpy(buf)
    base = header.data_start
    return {
        name: from_bytes(source, base + t.begin, base + t.end, t.dtype, t.shape, kind)
        for name, t in header.tensors.items()
    }


def _skeleton(root: Path, rel: str, manifest: Manifest) -> Any:
    if manifest.files[rel].size > MAX_SKELETON_SIZE:
        raise LimitExceededError(f"skeleton is larger than {MAX_SKELETON_SIZE} bytes", path=root / rel)
    raw = _read_verified(root, rel, manifest).tobytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
