"""Read parts of a checkpoint back into tensors and structures, verifying every byte it reads.

Each safetensors file is mapped privately (copy-on-write) and hashed in full before anything else happens
— unless ``verify=False``, or the stat cache (:mod:`cairn.format.statcache`) vouches that the file is unchanged since
cairn last hashed or wrote it. The header is validated from the map and the tensors are views into it.
Files are read and hashed in parallel (hashlib and page faults release the GIL). Nothing is returned,
and nothing recorded in the stat cache, unless every file matched its manifest entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cairn.checkpoint.skeleton import decode
from cairn.checkpoint.tensors import from_bytes
from cairn.errors import FormatError, IntegrityError, LimitExceededError, NotFoundError, UsageError
from cairn.format.manifest import Manifest
from cairn.format.safetensors import SafetensorsHeader, parse_header
from cairn.format.statcache import DirRecord, Stamp, default_cache, now_ns
from cairn.format.threads import run_all

__all__ = ["MAX_SKELETON_SIZE", "Check", "Verify", "check_for", "hash_files", "read_part", "read_parts"]

MAX_SKELETON_SIZE = 256 << 20
_CHUNK = 16 << 20
_WORKERS = 4

#: ``verify=`` of the load functions: True (hash unless the stat cache vouches), "full", or False
Verify = bool | Literal["full"]


def _open_regular(root: Path, rel: str, manifest: Manifest) -> tuple[int, os.stat_result, int]:
    """Open a listed file without following a final symlink or blocking on a FIFO; check it is regular
    and has the size the manifest lists. Returns (fd, its stat, the clock read just before the stat)."""
    path = root / rel
    entry = manifest.files[rel]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: file listed in the manifest is missing") from None
    except OSError as exc:  # ELOOP: a symlink
        raise FormatError(f"cannot open as a regular file: {exc.strerror}", path=path) from None
    taken = now_ns()
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FormatError("not a regular file", path=path)
    if st.st_size != entry.size:
        os.close(fd)
        raise IntegrityError(path, what="size", expected=entry.size, actual=st.st_size)
    return fd, st, taken


@dataclass(frozen=True)
class Check:
    """How a read checks contents: not at all (sizes and headers only), by hashing every byte, or by
    hashing what the stat cache does not vouch for. ``record`` collects what was hashed (None: no cache)."""

    hash: bool
    trust_cache: bool = False
    record: DirRecord | None = None
    #: how each file read was checked: "hashed", "cached" (the stat cache vouched) or "unverified"
    outcomes: dict[str, str] = field(default_factory=dict)


#: a file hashed in full whose stat did not change while it was read: (rel, stamp, sha256, clock)
Seen = tuple[str, Stamp, str, int]


def _contents(
    root: Path, rel: str, manifest: Manifest, check: Check
) -> tuple[np.ndarray[Any, Any], Seen | None]:
    """The file as a private copy-on-write memory map, hashed in full unless ``check`` says otherwise;
    IntegrityError unless it matches the manifest.

    Hashing through the map reads the page cache directly: on machines where first-touch page faults are
    expensive this is several times faster than reading into a fresh buffer, and the hashed pages are the
    ones the tensors then use.
    """
    entry = manifest.files[rel]
    fd, st, taken = _open_regular(root, rel, manifest)
    try:
        buf = _map(fd, st.st_size)
        if not check.hash:
            check.outcomes[rel] = "unverified"
            return buf, None
        stamp = Stamp.of(st)
        if check.trust_cache and check.record is not None and check.record.vouches(rel, stamp, entry.sha256):
            check.outcomes[rel] = "cached"
            return buf, None
        digest = hashlib.sha256()
        view = buf.data
        for pos in range(0, len(view), _CHUNK):
            digest.update(view[pos : pos + _CHUNK])
        actual = digest.hexdigest()
        if actual != entry.sha256:
            if check.record is not None:  # an entry that vouched for these bytes must not do so again
                check.record.forget(rel)
                check.record.save()
            raise IntegrityError(root / rel, what="sha256", expected=entry.sha256, actual=actual)
        check.outcomes[rel] = "hashed"
        unchanged = Stamp.of(os.fstat(fd)) == stamp  # a write while we hashed must not be recorded
        return buf, ((rel, stamp, actual, taken) if unchanged else None)
    finally:
        os.close(fd)


def _map(fd: int, size: int) -> np.ndarray[Any, Any]:
    if not size:
        return np.empty(0, np.uint8)
    with os.fdopen(os.dup(fd), "rb") as f:
        return np.memmap(f, dtype=np.uint8, mode="c", shape=(size,))


def remember(check: Check, seen: Iterable[Seen | None]) -> None:
    """Record the files hashed in full in the stat cache (after every read succeeded)."""
    if check.record is None:
        return
    for item in seen:
        if item is not None:
            rel, stamp, digest, taken = item
            check.record.add(rel, stamp, digest, taken_ns=taken)
    check.record.save()


def hash_files(root: Path, manifest: Manifest, check: Check) -> None:
    """Hash every file the manifest lists, in parallel (biggest first); record them; raise the first
    IntegrityError."""
    rels = sorted(manifest.files, key=lambda rel: -manifest.files[rel].size)
    seen = run_all(
        [functools.partial(_hash_only, root, rel, manifest, check) for rel in rels], workers=_WORKERS
    )
    remember(check, seen)


def _hash_only(root: Path, rel: str, manifest: Manifest, check: Check) -> Seen | None:
    return _contents(root, rel, manifest, check)[1]


def _header(view: memoryview, path: Path) -> SafetensorsHeader:
    if len(view) < 8:
        raise FormatError("file is shorter than the 8-byte safetensors header length", path=path)
    n = int.from_bytes(view[:8], "little")
    if 8 + n > len(view):
        raise FormatError(f"header length {n} runs past the end of the file", path=path)
    return parse_header(bytes(view[8 : 8 + n]), data_size=len(view) - 8 - n, path=str(path))


def _tensor_file(
    root: Path, rel: str, manifest: Manifest, kind: str | None, check: Check
) -> tuple[dict[str, Any], Seen | None]:
    path = root / rel
    buf, seen = _contents(root, rel, manifest, check)
    header = _header(buf.data, path)
    if kind is None:  # the writer records the framework in the header's metadata
        kind = "numpy" if header.metadata.get("format") == "np" else "torch"
    source: Any = buf
    if kind == "torch":
        import torch

        source = torch.from_numpy(buf)
    base = header.data_start
    tensors = {
        name: from_bytes(source, base + t.begin, base + t.end, t.dtype, t.shape, kind)
        for name, t in header.tensors.items()
    }
    return tensors, seen


def _skeleton(root: Path, rel: str, manifest: Manifest, check: Check) -> tuple[Any, Seen | None]:
    if manifest.files[rel].size > MAX_SKELETON_SIZE:
        raise LimitExceededError(f"skeleton is larger than {MAX_SKELETON_SIZE} bytes", path=root / rel)
    buf, seen = _contents(root, rel, manifest, Check(True, check.trust_cache, check.record, check.outcomes))
    raw = buf.tobytes()
    try:
        return json.loads(raw.decode("utf-8")), seen
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"not valid UTF-8 JSON: {exc}", path=root / rel) from None


def check_for(root: Path, verify: Verify) -> Check:
    """The :class:`Check` a ``verify=`` argument asks for, with the stat cache the settings choose.

    ``True``: hash every byte the stat cache does not vouch for; ``"full"``: hash every byte (and refresh
    the cache); ``False``: sizes and headers only.
    """
    if verify is False:
        return Check(hash=False)
    if verify is not True and verify != "full":
        raise UsageError(f"verify must be True, False or 'full', not {verify!r}")
    cache = default_cache()
    return Check(hash=True, trust_cache=verify is True, record=None if cache is None else cache.open(root))


def read_part(
    root: Path, manifest: Manifest, name: str, *, kind: str | None = None, verify: Verify = True
) -> Any:
    """The state of one part, rebuilt (tensors of ``kind``, or the kind recorded at save time)."""
    return read_parts(root, manifest, {name: kind}, check=check_for(root, verify))[name]


def read_parts(
    root: Path, manifest: Manifest, kinds: Mapping[str, str | None], *, check: Check
) -> dict[str, Any]:
    """Several parts at once (part name -> tensor kind or None), their files read and hashed in parallel.

    Without hashing (``Check(hash=False)``) files are memory-mapped and only their sizes are checked:
    faster, for trusted local disks; headers are still validated. Nothing is returned, and nothing is
    recorded in the stat cache, unless every file matched.
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
        [functools.partial(_tensor_file, root, rel, manifest, kinds[name], check) for name, rel in jobs],
        workers=_WORKERS,
    )
    seen: list[Seen | None] = []
    tensors: dict[str, dict[str, Any]] = {name: {} for name in names}
    for (name, _), (found, file_seen) in zip(jobs, loaded, strict=True):
        tensors[name].update(found)
        seen.append(file_seen)
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
        if part.skeleton is None:
            out[name] = found
        else:
            skeleton, skeleton_seen = _skeleton(root, part.skeleton, manifest, check)
            seen.append(skeleton_seen)
            out[name] = decode(skeleton, found)
    remember(check, seen)
    return out
