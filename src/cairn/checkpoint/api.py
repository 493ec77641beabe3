"""``cairn.save``, ``cairn.load``, ``cairn.verify``: one checkpoint directory at a time.

load's order of work is what makes it all-or-nothing: read and verify every file it needs → rebuild the
states → compare each with its target → only then apply them, model first. If anything before the last
step fails, no object has been touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cairn.checkpoint import adapters, rng
from cairn.checkpoint.environment import collect
from cairn.checkpoint.reader import Verify, check_for, hash_files, read_parts
from cairn.checkpoint.snapshot import part_names, take_snapshot
from cairn.checkpoint.tensors import is_numpy_array, is_torch_tensor
from cairn.checkpoint.validate import compare
from cairn.checkpoint.writer import DEFAULT_MAX_SHARD_SIZE, write_checkpoint
from cairn.errors import (
    CairnError,
    CheckpointError,
    FormatError,
    Mismatch,
    NotFoundError,
    StateMismatchError,
    UsageError,
)
from cairn.format.atomic_file import write_atomic
from cairn.format.hashing import sha256_file
from cairn.format.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    check_relpath,
    read_manifest,
    verify_files,
)
from cairn.format.safetensors import read_header_path

__all__ = ["LoadResult", "attach", "load", "load_state", "save", "verify"]


@dataclass(frozen=True)
class LoadResult:
    manifest: Manifest
    mismatches: tuple[Mismatch, ...] = ()  # with strict=False: what did not fit and was skipped or cast
    states: Mapping[str, Any] = field(default_factory=dict, repr=False)  # parts that had no target
    #: how each file read was checked: "hashed", "cached" (the stat cache vouched for it), "unverified"
    checked: Mapping[str, str] = field(default_factory=dict)

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.manifest.metadata

    @property
    def step(self) -> int | None:
        return self.manifest.step


def _objects(model: Any, optimizer: Any, scheduler: Any, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    objects = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    for name, part in zip(extra or {}, part_names(extra), strict=True):
        objects[part] = (extra or {})[name]
    return {k: v for k, v in objects.items() if v is not None}


def _check_json(data: Mapping[str, Any], *, what: str = "metadata") -> dict[str, Any]:
    """A deep copy of ``data`` through JSON: proves it is JSON and detaches it from the caller's objects."""
    try:
        copy: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(f"{what} must be JSON (finite numbers, strings, lists, objects): {exc}") from None
    metrics = copy.get("metrics") if what == "metadata" else None
    if metrics is not None and (
        not isinstance(metrics, dict)
        or not all(isinstance(v, int | float | None) and not isinstance(v, bool) for v in metrics.values())
    ):
        raise UsageError("metadata['metrics'] must map names to numbers")
    return copy


def save(
    directory: str | Path,
    *,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    extra: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    rng_state: bool = True,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
    overwrite: bool = False,
    capture_environment: bool = True,
) -> Manifest:
    """Save training state to ``directory`` atomically and return the manifest written.

    ``model``, ``optimizer``, ``scheduler`` and the values of ``extra`` may be anything with
    ``state_dict()`` / ``load_state_dict()``, a torch or NumPy generator, or a dict of tensors/arrays.
    ``config`` is written as ``config.json`` (a transformers model's own config is used when omitted).
    """
    objects = _objects(model, optimizer, scheduler, extra)
    if not objects and not rng_state:
        raise UsageError("nothing to save: pass model=, optimizer=, scheduler=, extra= or keep rng_state")
    if max_shard_size <= 0:
        raise UsageError("max_shard_size must be positive")
    meta = _check_json(collect(metadata, capture=capture_environment, model=model))
    config = None if config is None else _check_json(config, what="config")
    snap = take_snapshot(objects, metadata=meta, config=config, capture_rng=rng_state, pool=None)
    return write_checkpoint(Path(directory), snap, max_shard_size=max_shard_size, overwrite=overwrite)


def _local(directory: str | Path, endpoint: str | None, token: str | None, *, verified: bool = False) -> Path:
    """``directory`` itself, or, when it does not exist here and reads ``org/name[@rev]``, the local copy
    of that hub checkpoint (downloaded through :mod:`cairn.client`, imported only then)."""
    root = Path(directory)
    if root.exists() or not isinstance(directory, str):
        return root
    from cairn.client import HubConnectionError, looks_like_repo_ref, resolve_checkpoint

    if not looks_like_repo_ref(directory):
        return root
    try:
        # when the caller hashes every byte anyway, cached blobs need not be hashed twice
        return resolve_checkpoint(directory, endpoint=endpoint, token=token, recheck_cached=not verified)
    except HubConnectionError as err:  # most likely a mistyped local path: say both
        raise NotFoundError(
            f"{directory}: no such local directory, and as a hub reference: {err.message}"
        ) from None


def _check_verify(verify: object) -> None:
    if verify is not True and verify is not False and verify != "full":
        raise UsageError(f"verify must be True, False or 'full', not {verify!r}")


def _kind_for(target: Any) -> str | None:
    state = adapters.target_state(target)
    if isinstance(state, Mapping):
        for value in state.values():
            if is_torch_tensor(value):
                return "torch"
            if is_numpy_array(value):
                return "numpy"
    return None


def load(
    directory: str | Path,
    *,
    model: Any = None,
    optimizer: Any = None,
    scheduler: Any = None,
    extra: Mapping[str, Any] | None = None,
    strict: bool = True,
    rng_state: bool = True,
    verify: Verify = True,
    endpoint: str | None = None,
    token: str | None = None,
) -> LoadResult:
    """Load saved state into the objects given; all-or-nothing.

    Raises :class:`~cairn.errors.StateMismatchError` listing every missing/unexpected key and shape/dtype
    change (nothing applied). With ``strict=False`` what fits is loaded and the rest is reported in
    :attr:`LoadResult.mismatches`.

    ``verify=True`` checks the sha256 of every file read, except files the verified-file stat cache vouches
    for (cairn wrote or hashed them and their inode, size, mtime and ctime have not changed since; see
    ``docs/checkpoint.md``); ``verify="full"`` hashes every byte regardless; ``verify=False`` memory-maps
    the files and checks sizes and headers only.

    ``directory`` may also be a hub reference ``org/name[@rev]`` (when no such local path exists): the
    checkpoint is pulled into the local cache first, from ``endpoint`` with ``token`` (defaults:
    ``HF_ENDPOINT``, ``HF_TOKEN``; see :func:`cairn.client.client_settings`).
    """
    _check_verify(verify)
    root = _local(directory, endpoint, token, verified=verify is not False)
    manifest = read_manifest(root)
    verify_files(root, manifest, hashes=False)
    targets = _objects(model, optimizer, scheduler, extra)
    # one kind per part: torch targets get torch tensors, NumPy targets NumPy arrays
    kinds = {name: _kind_for(target) for name, target in targets.items()}
    if rng_state and "rng" in manifest.parts:
        kinds["rng"] = None
    check = check_for(root, verify)
    states = read_parts(root, manifest, kinds, check=check)
    mismatches: list[Mismatch] = []
    for name, target in targets.items():
        mismatches += compare(name, states[name], adapters.target_state(target))
    if mismatches and strict:
        raise StateMismatchError(mismatches)
    prepared_rng = rng.prepare(states["rng"]) if "rng" in states else None
    applied: list[str] = []
    for name, target in targets.items():
        state = states[name]
        if any(m.part == name and m.kind == "structure" for m in mismatches):
            continue  # strict=False: a part whose structure differs is reported, not applied
        if mismatches and isinstance(state, Mapping):
            # torch modules cast dtypes on load; other targets take values as they are
            skip = (
                {"shape", "unexpected"}
                if hasattr(target, "named_parameters")
                else {"shape", "unexpected", "dtype"}
            )
            bad = {m.key for m in mismatches if m.part == name and m.kind in skip}
            state = {k: v for k, v in state.items() if k not in bad}
        try:
            adapters.set_state(target, state, name, strict=strict)
        except CairnError:
            raise
        except Exception as exc:  # the object's own load_state_dict refused what passed our checks
            done = f"; already applied: {', '.join(applied)}" if applied else ""
            raise CheckpointError(
                f"{name}: load_state_dict failed: {type(exc).__name__}: {exc}{done}"
            ) from exc
        applied.append(name)
    if prepared_rng is not None:
        rng.apply(prepared_rng)
    return LoadResult(manifest, tuple(mismatches), checked=dict(sorted(check.outcomes.items())))


def load_state(
    directory: str | Path,
    part: str = "model",
    *,
    kind: str | None = None,
    verify: Verify = True,
    endpoint: str | None = None,
    token: str | None = None,
) -> Any:
    """The saved state of one part (``model``, ``optimizer``, ``extra/NAME``…) without a target object.
    ``directory`` may be a hub reference and ``verify`` is the same policy, as for :func:`load`."""
    _check_verify(verify)
    root = _local(directory, endpoint, token, verified=verify is not False)
    manifest = read_manifest(root)
    verify_files(root, manifest, hashes=False)
    return read_parts(root, manifest, {part: kind}, check=check_for(root, verify))[part]


def verify(directory: str | Path, *, endpoint: str | None = None, token: str | None = None) -> Manifest:
    """Check a checkpoint completely: manifest, every file's size and sha256, no stray files, headers.
    ``directory`` may be a hub reference, as for :func:`load`.

    Every byte is hashed (in parallel over files), whatever the stat cache holds; files that match are
    recorded in it, so a following ``load`` need not hash them again."""
    root = _local(directory, endpoint, token, verified=True)
    manifest = read_manifest(root)
    verify_files(root, manifest, hashes=False)
    hash_files(root, manifest, check_for(root, "full"))
    for name, part in manifest.parts.items():
        count = 0
        for rel in part.files:
            count += len(read_header_path(root / rel).tensors)
        if count != part.tensors:
            raise FormatError(
                f"part {name!r} should hold {part.tensors} tensors, its files hold {count}", path=root
            )
    return manifest


def attach(
    directory: str | Path, files: Sequence[str], *, metadata: Mapping[str, Any] | None = None
) -> Manifest:
    """Add files written into a committed checkpoint after the fact (an evaluation report, a model card)
    to its manifest, with their sizes and hashes, and merge ``metadata`` into its metadata.

    The manifest is replaced atomically (temporary file, fsync, rename), so a crash leaves the old one or
    the new one; files already listed are re-hashed.
    """
    root = Path(directory)
    manifest = read_manifest(root)
    listed = dict(manifest.files)
    for rel in files:
        check_relpath(rel, where="attach")
        if rel == MANIFEST_NAME:
            raise UsageError("the manifest cannot list itself")
        path = root / rel
        if path.is_symlink() or not path.is_file():
            raise NotFoundError(f"{path}: not a regular file in the checkpoint")
        size, digest = sha256_file(path)
        listed[rel] = FileEntry(size, digest)
    meta = dict(manifest.metadata)
    for key, value in _check_json(metadata or {}).items():  # merged one level deep: {"evaluations": {...}}
        old = meta.get(key)
        meta[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    updated = replace(manifest, files=listed, metadata=meta)
    write_atomic(root / MANIFEST_NAME, updated.dumps())
    return updated
