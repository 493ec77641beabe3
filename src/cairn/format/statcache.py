"""The verified-file stat cache: lets a load skip re-hashing files nobody has changed since cairn hashed them.

It works like git's index. When cairn knows a file's sha256 for certain — it wrote the bytes itself (save)
or it hashed all of them (``cairn.verify``, a hashing load) — it records the file's stamp: ``st_dev``,
``st_ino``, size, ``mtime_ns`` and ``ctime_ns``. A later load whose fresh ``fstat`` equals the recorded
stamp field for field, and whose manifest expects the recorded sha256, trusts that hash instead of reading
every byte again.

Why that is sound for changes made through the filesystem: every write, truncate, rename onto, chmod or
``utime`` sets ``ctime`` to the current time, and an unprivileged user cannot set it back; a copy is a new
inode. The one gap is git's *racy timestamp*: a change made within the same timestamp tick as the stamp was
taken can leave every field equal. So an entry is recorded only when the stat was taken at least
:func:`racy_margin_ns` after the file's newest timestamp, measured on the real-time clock, and a hash is
recorded only when the stats taken before and after reading it are equal.

What it cannot see: bytes changed beneath the filesystem (bit rot, a raw device write, a hostile
administrator). ``cairn.verify`` / ``cairn ckpt verify`` and ``load(verify="full")`` always hash every
byte; signatures (``cairn sign``) are what protects against tampering.

Storage: ``<cache>/<sha256 of the checkpoint directory's real path>.json``, one small JSON document per
checkpoint directory, replaced atomically (temporary file + rename). Anything unreadable, malformed or not
owned by the current user counts as empty — a bad cache costs a re-hash, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_VAR",
    "MAX_RACY_WAIT_NS",
    "WAIT_FOR_RACY_BYTES",
    "DirRecord",
    "Stamp",
    "VerifiedCache",
    "default_cache",
    "racy_margin_ns",
    "settled_stamps",
]

#: the setting: a directory for the cache, or ``off`` to disable it
ENV_VAR = "CAIRN_VERIFIED_CACHE"

_OFF = {"off", "0", "false", "no", "none"}
_VERSION = 1
_MAX_CACHE_FILE = 16 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: the coarse kernel clock that stamps files ticks at most every 10 ms (HZ=100); allow twice that
_FINE_MARGIN_NS = 20_000_000
#: filesystems that keep whole seconds (FAT keeps two) need the stamp to be older than that
_COARSE_MARGIN_NS = 2_000_000_000 + _FINE_MARGIN_NS
#: directories whose records are pruned once the cache holds more records than this
_PRUNE_ABOVE = 2000
#: :func:`settled_stamps` waits out the racy-timestamp margin (at most ``MAX_RACY_WAIT_NS``) only for
#: files that hold at least this many bytes together (hashing 64 MiB takes about as long as the wait)
WAIT_FOR_RACY_BYTES = 64 << 20
MAX_RACY_WAIT_NS = 50_000_000


@dataclass(frozen=True)
class Stamp:
    """What identifies one state of one file: which inode, how long, when last changed."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def to_json(self) -> list[int]:
        return [self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns]


def racy_margin_ns(stamp: Stamp) -> int:
    """How long after a file's newest timestamp a stat must be taken for a later change to show.

    Timestamps with no sub-second part suggest a filesystem that keeps whole seconds.
    """
    if stamp.mtime_ns % 1_000_000_000 == 0 and stamp.ctime_ns % 1_000_000_000 == 0:
        return _COARSE_MARGIN_NS
    return _FINE_MARGIN_NS


def is_racy(stamp: Stamp, taken_ns: int) -> bool:
    """Whether a change right after the stat (taken no earlier than ``taken_ns``) could keep this stamp."""
    return taken_ns - max(stamp.mtime_ns, stamp.ctime_ns) < racy_margin_ns(stamp)


def _stamps(root: Path, rels: Iterable[str]) -> dict[str, tuple[Stamp, int]]:
    out = {}
    for rel in rels:
        taken = now_ns()
        out[rel] = (Stamp.of(os.stat(root / rel, follow_symlinks=False)), taken)
    return out


def settled_stamps(root: Path, sizes: Mapping[str, int]) -> dict[str, tuple[Stamp, int]]:
    """The stamps of files that cairn just wrote or placed under ``root`` (``sizes``: their sizes by
    path relative to ``root``), each with the clock read before its stat, for :meth:`DirRecord.add`.

    Files changed too recently to be recorded safely (:func:`is_racy`) are waited for and stamped
    again when together they hold at least :data:`WAIT_FOR_RACY_BYTES`, so that a re-hash that would
    cost more than the wait is saved; small ones stay racy, and :meth:`DirRecord.add` leaves them out.
    Raises :class:`OSError` when a file cannot be stat'ed."""
    stamps = _stamps(root, sizes)
    racy = [(rel, st, t) for rel, (st, t) in stamps.items() if is_racy(st, t)]
    if racy and sum(sizes[rel] for rel, _, _ in racy) >= WAIT_FOR_RACY_BYTES:
        wait = max(racy_margin_ns(st) - (t - max(st.mtime_ns, st.ctime_ns)) for _, st, t in racy)
        if wait <= MAX_RACY_WAIT_NS:
            time.sleep(wait / 1e9)
            stamps = _stamps(root, sizes)
    return stamps


def _parse_entries(doc: Any, directory: str) -> dict[str, tuple[Stamp, str]]:
    if not isinstance(doc, dict) or doc.get("version") != _VERSION or doc.get("directory") != directory:
        return {}
    raw = doc.get("files")
    if not isinstance(raw, dict):
        return {}
    out: dict[str, tuple[Stamp, str]] = {}
    for rel, entry in raw.items():
        if not (isinstance(rel, str) and isinstance(entry, list) and len(entry) == 6):
            continue
        *fields, digest = entry
        if not all(type(v) is int for v in fields) or not (isinstance(digest, str) and _SHA256.match(digest)):
            continue
        out[rel] = (Stamp(*fields), digest)
    return out


class DirRecord:
    """The cache's entries for one checkpoint directory: look up, add, then :meth:`save` once."""

    def __init__(self, cache: VerifiedCache, directory: str, entries: dict[str, tuple[Stamp, str]]) -> None:
        self._cache = cache
        self.directory = directory
        self._entries = entries
        self._dirty = False
        self._lock = threading.Lock()  # files are read, and found bad, on several threads at once

    def vouches(self, rel: str, stamp: Stamp, sha256: str) -> bool:
        """Whether ``rel``, as it is now (``stamp``), is known to hash to ``sha256``."""
        with self._lock:
            return self._entries.get(rel) == (stamp, sha256)

    def add(self, rel: str, stamp: Stamp, sha256: str, *, taken_ns: int) -> bool:
        """Record that ``rel`` with ``stamp`` (stat taken no earlier than ``taken_ns``) hashes to ``sha256``.
        A racy stamp is not recorded; returns whether the entry was kept."""
        if is_racy(stamp, taken_ns):
            self.forget(rel)
            return False
        with self._lock:
            if self._entries.get(rel) != (stamp, sha256):
                self._entries[rel] = (stamp, sha256)
                self._dirty = True
        return True

    def forget(self, rel: str) -> None:
        with self._lock:
            if self._entries.pop(rel, None) is not None:
                self._dirty = True

    def save(self) -> None:
        """Write the record if it changed; failures are ignored (the cache is an optimisation)."""
        with self._lock:
            if not self._dirty:
                return
            entries = dict(self._entries)
            self._dirty = False
        self._cache.write(self.directory, entries)


class VerifiedCache:
    """The stat cache stored under ``root`` (created on first write, mode 0700)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _file(self, directory: str) -> Path:
        return self.root / f"{hashlib.sha256(directory.encode('utf-8', 'surrogateescape')).hexdigest()}.json"

    def _trusted_root(self) -> bool:
        """Only a cache directory that this user owns and nobody else can write to is believed."""
        try:
            st = os.stat(self.root)
        except OSError:
            return False
        return (
            stat.S_ISDIR(st.st_mode)
            and st.st_uid == os.geteuid()
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        )

    def open(self, directory: str | Path) -> DirRecord:
        """The record of a checkpoint directory (empty when there is none or it cannot be read)."""
        key = os.path.realpath(directory)
        return DirRecord(self, key, self._read(key))

    def fresh(self, directory: str | Path) -> DirRecord:
        """An empty record that replaces whatever was known of ``directory`` when saved (a directory
        whose files were all just written)."""
        record = DirRecord(self, os.path.realpath(directory), {})
        record._dirty = True
        return record

    def drop(self, directory: str | Path) -> None:
        """Forget a directory (deleted checkpoints); failures are ignored."""
        try:
            self._file(os.path.realpath(directory)).unlink(missing_ok=True)
        except OSError:
            return

    def _read(self, key: str) -> dict[str, tuple[Stamp, str]]:
        if not self._trusted_root():
            return {}
        try:
            fd = os.open(self._file(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return {}
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > _MAX_CACHE_FILE:
                return {}
            with os.fdopen(os.dup(fd), "rb") as f:
                raw = f.read(_MAX_CACHE_FILE + 1)
            return _parse_entries(json.loads(raw.decode("utf-8")), key)
        except (OSError, ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
            return {}
        finally:
            os.close(fd)

    def write(self, key: str, entries: Mapping[str, tuple[Stamp, str]]) -> None:
        doc = {
            "version": _VERSION,
            "directory": key,
            "files": {rel: [*stamp.to_json(), digest] for rel, (stamp, digest) in sorted(entries.items())},
        }
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._trusted_root():
                return
            target = self._file(key)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(json.dumps(doc, separators=(",", ":")).encode("utf-8"))
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._maybe_prune(keep=target)
        except OSError:
            return

    def _maybe_prune(self, *, keep: Path) -> None:
        """Once the cache holds more than ``_PRUNE_ABOVE`` records, drop those of directories that no
        longer exist, then the least recently written, down to three quarters of the limit (never
        ``keep``, the record just written)."""
        names = [p for p in self.root.iterdir() if p.suffix == ".json" and p != keep]
        if len(names) <= _PRUNE_ABOVE:
            return
        alive: list[tuple[int, Path]] = []
        for path in names:
            try:
                doc = json.loads(path.read_bytes())
                gone = not (isinstance(doc, dict) and isinstance(doc.get("directory"), str)) or not (
                    os.path.isdir(doc["directory"])
                )
                if not gone:
                    alive.append((path.stat().st_mtime_ns, path))
                    continue
            except (OSError, ValueError, RecursionError):
                pass
            path.unlink(missing_ok=True)
        if len(alive) >= _PRUNE_ABOVE:
            alive.sort()
            for _, path in alive[: len(alive) + 1 - _PRUNE_ABOVE * 3 // 4]:
                path.unlink(missing_ok=True)


def default_cache(env: Mapping[str, str] | None = None) -> VerifiedCache | None:
    """The cache the settings choose (None when disabled). Precedence: ``CAIRN_VERIFIED_CACHE`` (a
    directory, or ``off``), then ``$XDG_CACHE_HOME/cairn/verified``, then ``~/.cache/cairn/verified``."""
    env = os.environ if env is None else env
    setting = env.get(ENV_VAR, "").strip()
    if setting.lower() in _OFF:
        return None
    if setting:
        return VerifiedCache(Path(setting).expanduser())
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return VerifiedCache(Path(base) / "cairn" / "verified")


def now_ns() -> int:
    """The real-time clock, read before a stat whose racy-ness it will judge."""
    return time.time_ns()
