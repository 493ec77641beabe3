"""``cairn.save``, ``cairn.load``, ``cairn.verify``: one checkpoint directory at a time.

load's order of work is what makes it all-or-nothing: read and verify every file it needs → rebuild the
states → compare each with its target → only then apply them, model first. If anything before the last
step fails, no object has been touched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.checkpoint import adapters, rng
from cairn.checkpoint.environment import collect
from cairn.checkpoint.reader import read_parts
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
from cairn.format.manifest import Manifest, read_manifest, verify_files
from cairn.format.safetensors import read_header_path

__all__ = ["LoadResult", "load", "load_state", "save", "verify"]


@dataclass(frozen=True)
class LoadResult:
    manifest: Manifest
    mismatches: tuple[Mismatch, ...] = ()  # with strict=False: what did not fit and was skipped or cast
    states: Mapping[str, Any] = field(default_factory=dict, repr=False)  # parts that had no target

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


def _check_json(metadata: Mapping[str, Any]) -> None:
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"metadata must be JSON (finite numbers, strings, lists, objects): {exc}") from None


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
    meta = collect(metadata, capture=capture_environment, model=model)
    _check_json(meta)
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
    verify: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
) -> LoadResult:
    """Load saved state into the objects given; all-or-nothing.

    Raises :class:`~cairn.errors.StateMismatchError` listing every missing/unexpected key and shape/dtype
    change (nothing applied). With ``strict=False`` what fits is loaded and the rest is reported in
    :attr:`LoadResult.mismatches`. ``verify=True`` checks the sha256 of every byte read; ``verify=False``
    memory-maps the files and checks sizes and headers only.

    ``directory`` may also be a hub reference ``org/name[@rev]`` (when no such local path exists): the
    checkpoint is pulled into the local cache first, from ``endpoint`` with ``token`` (defaults:
    ``HF_ENDPOINT``, ``HF_TOKEN``; see :func:`cairn.client.client_settings`).
    """
    root = _local(directory, endpoint, token, verified=verify)
    manifest = read_manifest(root)
    verify_files(root, manifest, hashes=False)
    targets = _objects(model, optimizer, scheduler, extra)
    # one kind per part: torch targets get torch tensors, NumPy targets NumPy arrays
    kinds = {name: _kind_for(target) for name, target in targets.items()}
    if rng_state and "rng" in manifest.parts:
        kinds["rng"] = None
    states = read_parts(root, manifest, kinds, verify=verify)
    mismatches: list[Mismatch] = []
    for name, target in targets.items():
        mismatches += compare(name, states[name], adapters.target_state(target))
    if mismatches and strict:
        raise StateMismatchError(mismatches)
    applied: list[str] = []
    for name, target in targets.items():
        state = states[name]
        if any(m.part == name and m.kind == "structure" for m in mismatches):
            continue  # strict=False: a part whose structure differs is reported, not applied
        if mismatches and name == "model" and isinstance(state, Mapping):
            bad = {m.key for m in mismatches if m.part == name and m.kind in {"shape", "unexpected"}}
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
    if "rng" in states:
        rng.restore(states["rng"])
    return LoadResult(manifest, tuple(mismatches))


def load_state(
    directory: str | Path,
    part: str = "model",
    *,
    kind: str | None = None,
    verify: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
) -> Any:
    """The saved state of one part (``model``, ``optimizer``, ``extra/NAME``…) without a target object.
    ``directory`` may be a hub reference, as for :func:`load`."""
    root = _local(directory, endpoint, token, verified=verify)
    manifest = read_manifest(root)
    return read_parts(root, manifest, {part: kind}, verify=verify)[part]


def verify(directory: str | Path, *, endpoint: str | None = None, token: str | None = None) -> Manifest:
    """Check a checkpoint completely: manifest, every file's size and sha256, no stray files, headers.
    ``directory`` may be a hub reference, as for :func:`load`."""
    root = _local(directory, endpoint, token, verified=True)
    manifest = read_manifest(root)
    verify_files(root, manifest, hashes=True)
    for name, part in manifest.parts.items():
        count = 0
        for rel in part.files:
            count += len(read_header_path(root / rel).tensors)
        if count != part.tensors:
            raise FormatError(
                f"part {name!r} should hold {part.tensors} tensors, its files hold {count}", path=root
            )
    return manifest
