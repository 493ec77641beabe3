"""One entry point over every reader: :func:`inspect_path` detects a file's format and reads it.

Detection is by magic bytes (:mod:`cairn.format.detect`), never by name. A directory is read as a
Hugging Face-style checkpoint folder: its ``config.json`` is summarised, a ``*.index.json`` shard index
is preferred over the shards it names, and every other regular file whose format is a weights format is
read and merged (tensor names must not collide). Readers whose optional parts are missing raise
:class:`UnsupportedFormatError`; nothing is ever executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cairn.errors import CairnError, FormatError, LimitExceededError, UnsupportedFormatError
from cairn.format.detect import detect
from cairn.format.hf_config import MAX_CONFIG_SIZE, summarize_config
from cairn.format.inspection import Inspection, TensorRecord
from cairn.format.numpy_files import inspect_npy, inspect_npz
from cairn.format.safetensors_index import MAX_INDEX_SIZE, inspect_safetensors, inspect_sharded

__all__ = ["MAX_DIRECTORY_FILES", "READERS", "inspect_path"]

MAX_DIRECTORY_FILES = 10_000


def _load_json(path: Path, limit: int) -> object:
    size = path.stat().st_size
    if size > limit:
        raise LimitExceededError(f"JSON file of {size} bytes exceeds the limit of {limit}", path=path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"not valid UTF-8 JSON: {exc}", path=path) from None


def _inspect_json(path: Path) -> Inspection:
    doc = _load_json(path, MAX_INDEX_SIZE)
    if isinstance(doc, dict) and isinstance(doc.get("weight_map"), dict):
        return inspect_sharded(path)
    if isinstance(doc, dict) and path.stat().st_size <= MAX_CONFIG_SIZE:
        return Inspection(str(path), "json", config=summarize_config(doc, path=str(path)))
    raise UnsupportedFormatError("JSON document is neither a model config nor a shard index", path=path)


def _lazy(module: str, func: str) -> Callable[[Path], Inspection]:
    def run(path: Path) -> Inspection:
        import importlib

        reader: Callable[[Path], Inspection] = getattr(importlib.import_module(module), func)
        return reader(path)

    return run


#: format name → reader; the heavier readers are imported on first use
READERS: dict[str, Callable[[Path], Inspection]] = {
    "safetensors": inspect_safetensors,
    "npy": inspect_npy,
    "npz": inspect_npz,
    "json": _inspect_json,
    "tar": _lazy("cairn.format.torch_tar", "inspect_torch_tar"),  # PyTorch's pre-1.0 format
    "torch-zip": _lazy("cairn.format.torch_files", "inspect_torch_zip"),
    "torch-legacy": _lazy("cairn.format.torch_files", "inspect_torch_legacy"),
    "pickle": _lazy("cairn.format.torch_files", "inspect_pickle"),
    "gguf": _lazy("cairn.format.gguf", "inspect_gguf"),
    "onnx": _lazy("cairn.format.onnx", "inspect_onnx"),
    "keras": _lazy("cairn.format.keras", "inspect_keras"),
    "hdf5": _lazy("cairn.format.hdf5", "inspect_hdf5"),
}

_WEIGHTS = {"safetensors", "npy", "npz", "torch-zip", "torch-legacy", "gguf", "onnx", "keras", "hdf5"}


def inspect_path(path: str | Path) -> Inspection:
    """Read the file or directory at ``path`` structurally and describe what it holds."""
    p = Path(path)
    kind = detect(p)
    if kind == "directory":
        return _inspect_directory(p)
    reader = READERS.get(kind)
    if reader is None:
        raise UnsupportedFormatError(f"format {kind!r} is not a checkpoint format cairn can read", path=p)
    return reader(p)


def _inspect_directory(folder: Path) -> Inspection:
    entries = []
    try:
        for i, entry in enumerate(folder.iterdir()):
            if i >= MAX_DIRECTORY_FILES:
                raise LimitExceededError(
                    f"directory has more than {MAX_DIRECTORY_FILES} entries", path=folder
                )
            if entry.is_file() and not entry.is_symlink():
                entries.append(entry)
    except OSError as exc:
        raise FormatError(f"cannot list the directory: {exc.strerror}", path=folder) from None
    entries.sort()
    config = None
    parts: list[Inspection] = []
    covered: set[Path] = set()
    skipped: list[str] = []
    kinds = {e: detect(e) for e in entries}
    for entry, kind in kinds.items():
        if kind != "json":
            continue
        if entry.name == "config.json":
            config = summarize_config(_load_json(entry, MAX_CONFIG_SIZE), path=str(entry))
            continue
        try:  # tokenizer.json, generation_config.json...: only shard indexes matter here
            doc = _load_json(entry, MAX_INDEX_SIZE)
        except CairnError as exc:
            skipped.append(f"{entry.name} skipped: {exc.message}")
            continue
        if isinstance(doc, dict) and isinstance(doc.get("weight_map"), dict):
            part = inspect_sharded(entry)
            parts.append(part)
            covered |= {Path(f).resolve() for f in part.files}
    for entry, kind in kinds.items():
        if kind in _WEIGHTS and entry.resolve() not in covered:
            parts.append(READERS[kind](entry))
    tensors: list[TensorRecord] = []
    seen: dict[str, str] = {}
    warnings: list[str] = list(skipped)
    formats: list[str] = []
    for part in parts:
        formats.append(part.format)
        warnings += part.warnings
        for t in part.tensors:
            if t.name in seen:
                raise FormatError(f"tensor {t.name!r} is in both {seen[t.name]} and {part.path}", path=folder)
            seen[t.name] = part.path
            tensors.append(t)
    return Inspection(
        str(folder),
        "directory",
        tuple(tensors),
        {"formats": sorted(set(formats))},
        config=config,
        globals=tuple(dict.fromkeys(g for part in parts for g in part.globals)),
        warnings=tuple(warnings),
        files=tuple(part.path for part in parts),
    )
