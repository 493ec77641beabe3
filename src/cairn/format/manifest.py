"""The checkpoint manifest ``cairn.json``: its data model, parsing with limits, and file verification.

See ``docs/spec/checkpoint.md``. The manifest lists every file of a checkpoint with size and sha256, the
parts (model, optimizer, …) and the files that hold them, and the metadata. Parsing validates everything a
reader later relies on (paths stay inside the directory, hashes are hex, counts are non-negative) so that
code downstream can trust a :class:`Manifest` object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, IntegrityError, LimitExceededError, NotFoundError
from cairn.format.hashing import sha256_file

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MAX_MANIFEST_SIZE",
    "FileEntry",
    "Manifest",
    "PartEntry",
    "check_relpath",
    "parse_manifest",
    "read_manifest",
    "verify_files",
]

FORMAT_NAME = "cairn.checkpoint"
FORMAT_VERSION = 1
MANIFEST_NAME = "cairn.json"
MAX_MANIFEST_SIZE = 64 << 20

_PART_NAME = re.compile(r"^(model|optimizer|scheduler|rng|extra/[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RELPATH_CHARS = re.compile(r"^[A-Za-z0-9_.\-/]{1,255}$")


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class PartEntry:
    files: tuple[str, ...]
    skeleton: str | None
    index: str | None
    tensors: int
    bytes: int
    aliases: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "skeleton": self.skeleton,
            "index": self.index,
            "tensors": self.tensors,
            "bytes": self.bytes,
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True)
class Manifest:
    format_version: int
    created: str
    parts: Mapping[str, PartEntry]
    files: Mapping[str, FileEntry]
    metadata: Mapping[str, Any]
    cairn_version: str = ""

    @property
    def step(self) -> int | None:
        step = self.metadata.get("step")
        return step if isinstance(step, int) else None

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "cairn_version": self.cairn_version,
            "created": self.created,
            "parts": {name: part.to_json() for name, part in self.parts.items()},
            "files": {name: {"size": f.size, "sha256": f.sha256} for name, f in self.files.items()},
            "metadata": dict(self.metadata),
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), indent=1, allow_nan=False).encode("utf-8")


def check_relpath(rel: object, *, where: str) -> str:
    """A manifest path must be relative, normalised and inside the checkpoint directory."""
    if not isinstance(rel, str) or not _RELPATH_CHARS.match(rel):
        raise FormatError(f"{where}: invalid file path {rel!r}")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise FormatError(f"{where}: file path {rel!r} leaves the checkpoint directory or is not normalised")
    return rel


def _int(value: object, where: str) -> int:
    if type(value) is not int or value < 0:
        raise FormatError(f"{where} must be a non-negative integer, got {value!r}")
    return value


def _parse_part(name: str, raw: object) -> PartEntry:
    where = f"manifest part {name!r}"
    if not isinstance(raw, dict):
        raise FormatError(f"{where} is not an object")
    files = raw.get("files")
    if not isinstance(files, list):
        raise FormatError(f"{where}: files must be a list")
    skeleton, index = raw.get("skeleton"), raw.get("index")
    aliases = raw.get("aliases", {})
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise FormatError(f"{where}: aliases must map tensor names to tensor names")
    return PartEntry(
        files=tuple(check_relpath(f, where=where) for f in files),
        skeleton=None if skeleton is None else check_relpath(skeleton, where=where),
        index=None if index is None else check_relpath(index, where=where),
        tensors=_int(raw.get("tensors"), f"{where}: tensors"),
        bytes=_int(raw.get("bytes"), f"{where}: bytes"),
        aliases=dict(aliases),
    )


def parse_manifest(raw: bytes, *, path: str | Path = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest bytes."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"manifest is not valid UTF-8 JSON: {exc}", path=path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise FormatError(f"not a cairn checkpoint manifest (format must be {FORMAT_NAME!r})", path=path)
    version = doc.get("format_version")
    if type(version) is not int or version < 1:
        raise FormatError(f"invalid format_version {version!r}", path=path)
    if version > FORMAT_VERSION:
        raise FormatError(
            f"format_version {version} is newer than this cairn understands ({FORMAT_VERSION}); upgrade cairn",
            path=path,
        )
    parts_raw, files_raw, metadata = doc.get("parts"), doc.get("files"), doc.get("metadata")
    if not isinstance(parts_raw, dict) or not isinstance(files_raw, dict) or not isinstance(metadata, dict):
        raise FormatError("manifest must have objects 'parts', 'files' and 'metadata'", path=path)
    parts: dict[str, PartEntry] = {}
    for name, part in parts_raw.items():
        if not isinstance(name, str) or not _PART_NAME.match(name):
            raise FormatError(f"invalid part name {name!r}", path=path)
        parts[name] = _parse_part(name, part)
    files: dict[str, FileEntry] = {}
    for rel, entry in files_raw.items():
        check_relpath(rel, where=str(path))
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise FormatError(f"file entry for {rel!r} needs size and sha256", path=path)
        if not _SHA256.match(entry["sha256"]):
            raise FormatError(f"file entry for {rel!r} has a malformed sha256", path=path)
        files[rel] = FileEntry(_int(entry.get("size"), f"size of {rel!r}"), entry["sha256"])
    for name, part in parts.items():
        for rel in (*part.files, part.skeleton, part.index):
            if rel is not None and rel not in files:
                raise FormatError(
                    f"part {name!r} refers to {rel!r}, which the manifest does not list", path=path
                )
    created = doc.get("created")
    if not isinstance(created, str):
        raise FormatError("manifest 'created' must be a timestamp string", path=path)
    cairn_version = doc.get("cairn_version", "")
    return Manifest(version, created, parts, files, metadata, str(cairn_version))


def read_manifest(directory: str | Path) -> Manifest:
    """Read ``DIR/cairn.json``. Raises NotFoundError when there is no checkpoint there."""
    path = Path(directory) / MANIFEST_NAME
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_MANIFEST_SIZE + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no checkpoint at {directory} ({MANIFEST_NAME} is missing)") from None
    except NotADirectoryError:
        raise NotFoundError(f"no checkpoint at {directory} (not a directory)") from None
    if len(raw) > MAX_MANIFEST_SIZE:
        raise LimitExceededError(f"manifest is larger than {MAX_MANIFEST_SIZE} bytes", path=path)
    return parse_manifest(raw, path=path)


def verify_files(directory: str | Path, manifest: Manifest, *, hashes: bool = True) -> None:
    """Check that every listed file exists with its size (and sha256), and that no other file is present."""
    root = Path(directory)
    for rel, entry in manifest.files.items():
        path = root / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"{path}: file listed in the manifest is missing") from None
        if path.is_symlink() or not path.is_file():
            raise FormatError("not a regular file", path=path)
        if size != entry.size:
            raise IntegrityError(path, what="size", expected=entry.size, actual=size)
        if hashes:
            _, digest = sha256_file(path)
            if digest != entry.sha256:
                raise IntegrityError(path, what="sha256", expected=entry.sha256, actual=digest)
    listed = set(manifest.files) | {MANIFEST_NAME}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (path.is_file() or path.is_symlink()) and rel not in listed:
            raise IntegrityError(path, what="presence", expected="not in the checkpoint", actual="present")
