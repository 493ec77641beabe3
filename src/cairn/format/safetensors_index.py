"""Inspect safetensors files: single files, sharded checkpoints with an index, and remote byte ranges.

A sharded checkpoint is ``model.safetensors.index.json`` (``{"metadata": {...}, "weight_map": {tensor:
shard file}}``) next to its shards (``pytorch_model.bin.index.json`` works the same way over torch shards). The index is checked before any shard is opened: its size against
:data:`MAX_INDEX_SIZE`, the shard count against :data:`MAX_SHARDS`, and every shard name must be a plain
file name in the index's own folder (no ``..``, no absolute paths, no links out of it). Then every shard's
header is read and the weight map must match the shards exactly.

:func:`read_header_ranges` reads a header through any ``read(start, end) -> bytes`` callable, so the hub
and client can inspect a remote file with two HTTP range requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cairn.errors import FormatError, LimitExceededError
from cairn.format.inspection import Inspection, TensorRecord
from cairn.format.safetensors import (
    HeaderMemo,
    SafetensorsHeader,
    _header_length,
    parse_header,
    read_header_path,
)

__all__ = [
    "MAX_INDEX_SIZE",
    "MAX_SHARDS",
    "ShardIndex",
    "header_records",
    "inspect_safetensors",
    "inspect_safetensors_ranges",
    "inspect_sharded",
    "read_header_ranges",
    "read_index",
]

MAX_INDEX_SIZE = 64 << 20
MAX_SHARDS = 10_000


@dataclass(frozen=True)
class ShardIndex:
    weight_map: dict[str, str]
    metadata: dict[str, object]
    shards: tuple[str, ...]


def header_records(header: SafetensorsHeader, file: str | None) -> list[TensorRecord]:
    return [
        TensorRecord(t.name, t.dtype, t.shape, t.nbytes, file, header.data_start + t.begin)
        for t in header.tensors.values()
    ]


def inspect_safetensors(path: str | Path) -> Inspection:
    header = read_header_path(path)
    return Inspection(
        str(path), "safetensors", tuple(header_records(header, str(path))), dict(header.metadata)
    )


def read_index(path: str | Path) -> ShardIndex:
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_INDEX_SIZE:
        raise LimitExceededError(f"index of {size} bytes exceeds the limit of {MAX_INDEX_SIZE}", path=p)
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"index is not valid UTF-8 JSON: {exc}", path=p) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("weight_map"), dict):
        raise FormatError("index has no weight_map object", path=p)
    weight_map: dict[str, str] = {}
    for name, shard in doc["weight_map"].items():
        if not isinstance(shard, str) or not _plain_name(shard):
            raise FormatError(f"weight_map entry {name!r} names an unsafe shard path {shard!r}", path=p)
        weight_map[name] = shard
    shards = tuple(dict.fromkeys(weight_map.values()))
    if len(shards) > MAX_SHARDS:
        raise LimitExceededError(f"index names {len(shards)} shards, over the limit of {MAX_SHARDS}", path=p)
    meta = doc.get("metadata")
    return ShardIndex(weight_map, dict(meta) if isinstance(meta, dict) else {}, shards)


def _plain_name(name: str) -> bool:
    return (
        bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and "\0" not in name
    )


def _shard_records(path: Path, kinds: list[str]) -> list[TensorRecord]:
    """A shard's tensors: safetensors headers directly, anything else (``pytorch_model-00001-of-00002.bin``
    under ``pytorch_model.bin.index.json``) through its own reader."""
    from cairn.format.detect import detect

    kind = detect(path)
    kinds.append(kind)
    if kind == "safetensors":
        return header_records(read_header_path(path), str(path))
    if kind not in ("torch-zip", "torch-legacy", "npz", "npy", "gguf"):
        raise FormatError(f"shard {path.name!r} is {kind}, not a weights format", path=path)
    from cairn.format.reader import inspect_path

    return list(inspect_path(path).tensors)


def inspect_sharded(index_path: str | Path) -> Inspection:
    """A checkpoint split into shards by an index (``model.safetensors.index.json`` or
    ``pytorch_model.bin.index.json``): every shard read, checked against the weight map."""
    p = Path(index_path)
    index = read_index(p)
    folder = p.parent.resolve()
    records: list[TensorRecord] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    kinds: list[str] = []
    for shard in index.shards:
        shard_path = (p.parent / shard).resolve()
        if shard_path.parent != folder:
            raise FormatError(f"shard {shard!r} resolves outside the index's folder", path=p)
        if not shard_path.is_file():
            raise FormatError(f"shard {shard!r} named in the index does not exist", path=p)
        for rec in _shard_records(p.parent / shard, kinds):
            if rec.name in seen:
                raise FormatError(f"tensor {rec.name!r} is in both {seen[rec.name]} and {shard}", path=p)
            seen[rec.name] = shard
            mapped = index.weight_map.get(rec.name)
            if mapped is None:
                warnings.append(f"tensor {rec.name!r} in {shard} is not in the weight_map")
            elif mapped != shard:
                raise FormatError(f"weight_map puts {rec.name!r} in {mapped} but it is in {shard}", path=p)
            records.append(rec)
    missing = sorted(set(index.weight_map) - set(seen))
    if missing:
        raise FormatError(
            f"weight_map lists {len(missing)} tensors no shard holds, e.g. {missing[0]!r}", path=p
        )
    return Inspection(
        str(p),
        f"{'/'.join(sorted(set(kinds))) or 'safetensors'}-sharded",
        tuple(records),
        dict(index.metadata),
        warnings=tuple(warnings),
        files=tuple(str(p.parent / s) for s in index.shards),
    )


def read_header_ranges(
    read: Callable[[int, int], bytes],
    *,
    file_size: int | None = None,
    path: str | None = None,
    memo: HeaderMemo | None = None,
) -> SafetensorsHeader:
    """Read a header with two range reads: ``read(0, 8)`` then ``read(8, 8 + N)`` (end exclusive);
    ``memo``: parse through it (see :class:`~cairn.format.safetensors.HeaderMemo`)."""
    n = _header_length(read(0, 8), path=path, file_size=file_size)
    raw = read(8, 8 + n)
    if len(raw) != n:
        raise FormatError(f"range read returned {len(raw)} of {n} header bytes", path=path)
    data_size = None if file_size is None else file_size - 8 - n
    if memo is not None:
        return memo.parse(raw, data_size=data_size, path=path)
    return parse_header(raw, data_size=data_size, path=path)


def inspect_safetensors_ranges(
    read: Callable[[int, int], bytes], *, name: str, file_size: int | None = None
) -> Inspection:
    """An :class:`Inspection` of a remote safetensors file read through two range requests. The records
    carry absolute offsets but no local file (``file`` is None): fetch ``[offset, offset + nbytes)``."""
    header = read_header_ranges(read, file_size=file_size, path=name)
    records = [replace(r, file=None) for r in header_records(header, name)]
    return Inspection(name, "safetensors", tuple(records), dict(header.metadata))
