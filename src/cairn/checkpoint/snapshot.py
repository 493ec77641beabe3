"""Taking a snapshot of training state: what a save needs, detached from the live objects if asked.

``take_snapshot`` asks every object for its state (``state_dict()``, generator states, plain dicts), splits
each state into tensors and a JSON skeleton, and — for an asynchronous save — copies every tensor into host
memory so training can go on mutating its parameters. Copies go into buffers kept from the previous
snapshot when shapes and dtypes match, so steady-state saves do not pay for fresh page faults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cairn.checkpoint import adapters, rng
from cairn.checkpoint.skeleton import encode, is_flat_tensor_mapping
from cairn.checkpoint.tensors import is_numpy_array, torch_or_none
from cairn.errors import UsageError

__all__ = ["BufferPool", "PartState", "Snapshot", "part_names", "take_snapshot"]

_EXTRA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class PartState:
    name: str  # "model", "optimizer", "scheduler", "rng" or "extra/NAME"
    skeleton: Any  # JSON-ready; None for a flat name -> tensor mapping
    tensors: dict[str, Any]
    kind: str  # "torch" or "numpy": how the tensors come back when nothing says otherwise


@dataclass
class Snapshot:
    parts: list[PartState]
    metadata: dict[str, Any]
    config: dict[str, Any] | None = None
    nbytes: int = 0
    _pool: BufferPool | None = field(default=None, repr=False)


class BufferPool:
    """Host buffers reused across snapshots, keyed by (part, tensor key)."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, str], Any] = {}

    def copy(self, part: str, key: str, value: Any) -> Any:
        old = self._buffers.get((part, key))
        if is_numpy_array(value):
            if (
                old is not None
                and is_numpy_array(old)
                and old.shape == value.shape
                and old.dtype == value.dtype
            ):
                np.copyto(old, value)
                return old
            new = np.array(value, copy=True, order="C")
        else:
            if (
                old is not None
                and not is_numpy_array(old)
                and old.shape == value.shape
                and old.dtype == value.dtype
            ):
                old.copy_(value.detach(), non_blocking=value.device.type != "cpu")
                return old
            new = value.detach().to("cpu", copy=True, memory_format=_contiguous())
        self._buffers[(part, key)] = new
        return new

    def synchronize(self) -> None:
        torch = torch_or_none()
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()


def _contiguous() -> Any:
    torch = torch_or_none()
    return torch.contiguous_format


def part_names(extra: Mapping[str, Any] | None) -> list[str]:
    names = []
    for name in extra or {}:
        if not isinstance(name, str) or not _EXTRA_NAME.match(name):
            raise UsageError(f"extra name {name!r} must match {_EXTRA_NAME.pattern}")
        names.append(f"extra/{name}")
    return names


def _part(name: str, state: Any, copy_into: BufferPool | None) -> PartState:
    flat = name == "model" and is_flat_tensor_mapping(state)
    encoded = encode(state)
    tensors = encoded.tensors
    if copy_into is not None:
        tensors = {key: copy_into.copy(name, key, value) for key, value in tensors.items()}
    kind = "numpy" if tensors and all(is_numpy_array(t) for t in tensors.values()) else "torch"
    if not tensors:
        kind = "numpy" if torch_or_none() is None else "torch"
    return PartState(name, None if flat else encoded.skeleton, tensors, kind)


def take_snapshot(
    objects: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    capture_rng: bool,
    pool: BufferPool | None,
) -> Snapshot:
    """State of ``objects`` (part name -> object). With a ``pool`` every tensor is copied to host memory."""
    parts: list[PartState] = []
    meta = dict(metadata)
    for name, obj in objects.items():
        if obj is None:
            continue
        parts.append(_part(name, adapters.get_state(obj, name), pool))
    if capture_rng:
        states, present = rng.capture()
        parts.append(_part("rng", states, pool))
        meta["rng"] = present
    if pool is not None:
        pool.synchronize()
    nbytes = sum(_nbytes(t) for p in parts for t in p.tensors.values())
    cfg = dict(config) if config is not None else adapters.config_of(objects.get("model"))
    return Snapshot(parts, meta, cfg, nbytes, pool)


def _nbytes(t: Any) -> int:
    return int(t.nbytes) if is_numpy_array(t) else int(t.numel() * t.element_size())
