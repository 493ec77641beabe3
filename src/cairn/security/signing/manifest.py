"""The signed manifest: which resources (files or file shards) a model has, and their digests.

This is the OMS ``predicate`` of ``https://model_signing/signature/v1.0`` as data:

- :class:`Serialization` — how the model was turned into resources (``method`` ``files`` or ``shards``,
  ``hash_type``, ``shard_size``, ``allow_symlinks``, ``ignore_paths``). Everything that changes a digest is
  recorded, so a verifier can recompute the manifest the same way.
- :class:`Resource` — one resource descriptor: ``name`` (``path`` or ``path:start:end``), ``algorithm``
  (``sha256`` or ``sha256-sharded-<shard_size>``) and hex ``digest``.
- :class:`Manifest` — the model name (informative only), the serialization and the resources in canonical
  order; :meth:`Manifest.root_digest` is the subject digest, sha256 over the concatenated raw digests.

:func:`compare` says how an actual manifest differs from a signed one, per file. Parsing checks every
field and refuses names that could escape the model directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cairn.errors import UsageError
from cairn.security.signing.errors import SignatureFormatError

__all__ = [
    "DEFAULT_IGNORE_PATHS",
    "DEFAULT_SHARD_SIZE",
    "MAX_RESOURCES",
    "Comparison",
    "Manifest",
    "Resource",
    "Serialization",
    "compare",
    "resource_path",
]

#: what model_signing ignores by default, plus nothing else; the signature's own path is added when signing
DEFAULT_IGNORE_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
#: OMS's default shard size (1 GB): big enough to keep manifests short, small enough to hash in parallel
DEFAULT_SHARD_SIZE = 1_000_000_000
#: resources per manifest; checked before building the list
MAX_RESOURCES = 1_000_000
_HASH_TYPES = frozenset({"sha256"})

Method = Literal["files", "shards"]


@dataclass(frozen=True)
class Serialization:
    """How a model directory was serialized into resources; every field changes the manifest."""

    method: Method = "files"
    shard_size: int = DEFAULT_SHARD_SIZE
    hash_type: str = "sha256"
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE_PATHS

    @property
    def algorithm(self) -> str:
        """The name each resource's digest carries (the digest name encodes its parameters)."""
        return self.hash_type if self.method == "files" else f"{self.hash_type}-sharded-{self.shard_size}"

    def ignores(self, rel: str) -> bool:
        """Whether the relative posix path ``rel`` is an ignore path or lies below one."""
        for p in self.ignore_paths:
            p = p.strip("/")
            if p not in ("", ".") and (rel == p or rel.startswith(p + "/")):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "hash_type": self.hash_type}
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        out["allow_symlinks"] = self.allow_symlinks
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, data: object) -> Serialization:
        if not isinstance(data, dict):
            raise SignatureFormatError("predicate.serialization is not an object")
        method = data.get("method")
        if method not in ("files", "shards"):
            raise SignatureFormatError(f"unsupported serialization method {method!r}")
        hash_type = data.get("hash_type")
        if not isinstance(hash_type, str) or hash_type not in _HASH_TYPES:
            raise SignatureFormatError(f"unsupported hash_type {hash_type!r} (cairn verifies sha256)")
        allow = data.get("allow_symlinks", False)
        if not isinstance(allow, bool):
            raise SignatureFormatError("serialization.allow_symlinks is not a boolean")
        ignore = data.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise SignatureFormatError("serialization.ignore_paths is not a list of strings")
        shard_size = DEFAULT_SHARD_SIZE
        if method == "shards":
            raw = data.get("shard_size")
            # protobuf-JSON writers record numbers as doubles (4.0); accept integral values only
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) or raw < 1:
                raise SignatureFormatError(f"serialization.shard_size {raw!r} is not a positive integer")
            shard_size = int(raw)
        return cls(method, shard_size, hash_type, allow, tuple(ignore))


@dataclass(frozen=True, order=True)
class Resource:
    """One signed resource: a whole file or a byte range ``[start, end)`` of one."""

    name: str
    algorithm: str
    digest: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest}


def resource_path(name: str, method: Method) -> str:
    """The file a resource name refers to (``a/b.bin:0:1000`` → ``a/b.bin`` for shards)."""
    return name.rsplit(":", 2)[0] if method == "shards" else name


def _sort_key(name: str, method: Method) -> tuple[tuple[str, ...], int, int]:
    # canonical order: by path components, then shard offsets (as numbers, not text)
    if method == "shards":
        path, start, end = name.rsplit(":", 2)
        return tuple(path.split("/")), int(start), int(end)
    return tuple(name.split("/")), 0, 0


def _check_name(name: str, method: Method) -> None:
    path = name
    if method == "shards":
        parts = name.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise SignatureFormatError(f"shard resource {name!r} is not 'path:start:end'")
        if int(parts[1]) >= int(parts[2]):
            raise SignatureFormatError(f"shard resource {name!r} has start >= end")
        path = parts[0]
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(c in ("", ".", "..") for c in path.split("/"))
    )
    if bad:
        raise SignatureFormatError(f"resource name {name!r} is not a relative path inside the model")


@dataclass(frozen=True)
class Manifest:
    """A model's resources and their digests, in canonical order."""

    model_name: str
    serialization: Serialization
    resources: tuple[Resource, ...] = field(default=())

    @classmethod
    def build(cls, model_name: str, serialization: Serialization, resources: Iterable[Resource]) -> Manifest:
        """A manifest with ``resources`` put in canonical order."""
        method = serialization.method
        ordered = sorted(resources, key=lambda r: _sort_key(r.name, method))
        return cls(model_name, serialization, tuple(ordered))

    @classmethod
    def from_json(cls, model_name: str, serialization: Serialization, items: object) -> Manifest:
        """Parse ``predicate.resources``, keeping the signer's order (the root digest depends on it)."""
        if not isinstance(items, list):
            raise SignatureFormatError("predicate.resources is not a list")
        if len(items) > MAX_RESOURCES:
            raise SignatureFormatError(f"{len(items)} resources, more than the limit {MAX_RESOURCES}")
        out: list[Resource] = []
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                raise SignatureFormatError("a resource is not an object")
            name, algo, digest = item.get("name"), item.get("algorithm"), item.get("digest")
            if not (isinstance(name, str) and isinstance(algo, str) and isinstance(digest, str)):
                raise SignatureFormatError("a resource lacks a string name, algorithm or digest")
            _check_name(name, serialization.method)
            if algo != serialization.algorithm:
                raise SignatureFormatError(
                    f"resource {name!r} uses {algo!r}, not {serialization.algorithm!r}"
                )
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SignatureFormatError(f"resource {name!r} digest is not 64 lowercase hex digits")
            if name in seen:
                raise SignatureFormatError(f"resource {name!r} appears twice")
            seen.add(name)
            out.append(Resource(name, algo, digest))
        return cls(model_name, serialization, tuple(out))

    @classmethod
    def from_file_digests(
        cls, digests: Mapping[str, str], serialization: Serialization, model_name: str = ""
    ) -> Manifest:
        """The manifest of files whose sha256 is already known (a hub's stored blobs), without reading them.

        Only for ``method="files"``, where a resource digest is the file's plain sha256. Paths the
        serialization ignores (the signature itself, ``.git``...) are left out, as hashing would.
        """
        if serialization.method != "files":
            raise UsageError("stored file digests can only stand in for a 'files' manifest, not 'shards'")
        return cls.build(
            model_name,
            serialization,
            (
                Resource(n, serialization.algorithm, d)
                for n, d in digests.items()
                if not serialization.ignores(n)
            ),
        )

    def root_digest(self) -> str:
        """sha256 over the raw bytes of every resource digest, in manifest order (the subject digest)."""
        h = hashlib.sha256()
        for r in self.resources:
            h.update(bytes.fromhex(r.digest))
        return h.hexdigest()

    def files(self) -> tuple[str, ...]:
        """The distinct files the manifest covers, in order."""
        return tuple(dict.fromkeys(resource_path(r.name, self.serialization.method) for r in self.resources))

    def digests(self) -> dict[str, str]:
        return {r.name: r.digest for r in self.resources}


@dataclass(frozen=True)
class Comparison:
    """Per-file differences between a signed manifest and the one computed from the files."""

    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: resource name → (signed digest, actual digest); "" where one side lacks the resource
    resources: Mapping[str, tuple[str, str]]

    @property
    def ok(self) -> bool:
        return not (self.changed or self.added or self.removed)


def compare(signed: Manifest, actual: Manifest) -> Comparison:
    """How ``actual`` differs from ``signed``: files whose bytes changed, appeared or disappeared."""
    method = signed.serialization.method
    want, have = signed.digests(), actual.digests()
    diffs = {
        name: (want.get(name, ""), have.get(name, ""))
        for name in sorted(set(want) | set(have))
        if want.get(name) != have.get(name)
    }
    signed_files, actual_files = set(signed.files()), set(actual.files())
    touched = {resource_path(n, method) for n in diffs}
    return Comparison(
        changed=tuple(sorted(touched & signed_files & actual_files)),
        added=tuple(sorted(actual_files - signed_files)),
        removed=tuple(sorted(signed_files - actual_files)),
        resources=diffs,
    )
