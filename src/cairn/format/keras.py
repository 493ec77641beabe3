"""Read Keras 3 ``.keras`` archives: the model config, its layers and the classes it would import.

A ``.keras`` file is a zip of ``metadata.json`` (``keras_version``, ``date_saved``), ``config.json`` (the
model as nested ``{"module", "class_name", "config", "registered_name"}`` objects) and
``model.weights.h5`` (HDF5). The JSON members are read under :data:`MAX_JSON_SIZE` and never evaluated;
every ``module.class_name`` the config names is listed (what loading would import), and ``Lambda``
layers carrying serialized Python bytecode are flagged: loading those runs code. The weights are listed
by :mod:`cairn.format.hdf5` (``layers.dense.vars.0``...), addressable in place when the member is stored
uncompressed; a weights file it cannot parse becomes a warning.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from cairn.errors import CairnError, FormatError, LimitExceededError
from cairn.format.hdf5 import list_datasets
from cairn.format.inspection import Inspection, TensorRecord
from cairn.format.numpy_files import local_data_start

__all__ = ["MAX_JSON_SIZE", "inspect_keras"]

MAX_JSON_SIZE = 64 << 20
MAX_COMPRESSED_WEIGHTS = 512 << 20
MAX_DEPTH = 100


def _json(zf: zipfile.ZipFile, name: str, path: str) -> object:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_JSON_SIZE:
        raise LimitExceededError(f"{name} of {info.file_size} bytes exceeds {MAX_JSON_SIZE}", path=path)
    try:
        return json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{name} is not valid UTF-8 JSON: {exc}", path=path) from None


def _objects(node: object, depth: int = 0) -> Iterator[dict[str, object]]:
    """Every serialized Keras object (a dict with ``class_name``) in the config, depth-first."""
    if depth > MAX_DEPTH:
        raise LimitExceededError(f"config nests deeper than {MAX_DEPTH}")
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str):
            yield node
        for value in node.values():
            yield from _objects(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value, depth + 1)


def _layer(obj: dict[str, object]) -> dict[str, object]:
    cfg = obj.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    out: dict[str, object] = {"class_name": obj["class_name"], "name": cfg.get("name")}
    for key in ("units", "filters", "kernel_size", "activation", "input_dim", "output_dim"):
        value = cfg.get(key)
        if isinstance(value, str | int | list):
            out[key] = value
    build = obj.get("build_config")
    if isinstance(build, dict) and "input_shape" in build:
        out["input_shape"] = build["input_shape"]
    return out


def _weights(p: Path) -> tuple[list[TensorRecord], list[str]]:
    """The datasets of ``model.weights.h5``, addressed inside the archive (stored member) or the member
    (compressed); a weights file cairn cannot parse becomes a warning, not a failed inspection."""
    sp = str(p)
    try:
        with zipfile.ZipFile(p) as zf, p.open("rb") as raw:
            info = zf.getinfo("model.weights.h5")
            if info.compress_type == zipfile.ZIP_STORED:
                start = local_data_start(raw, info, sp)
                records, notes = list_datasets(_Window(raw, start, info.file_size), info.file_size, sp)
                return [
                    replace(r, offset=r.offset + start) if r.offset is not None else r for r in records
                ], notes
            if info.file_size > MAX_COMPRESSED_WEIGHTS:
                return [], [
                    f"model.weights.h5 is compressed and over {MAX_COMPRESSED_WEIGHTS} bytes: not listed"
                ]
            data = zf.read(info)
        records, notes = list_datasets(io.BytesIO(data), len(data), sp)
        return [replace(r, member=info.filename) if r.offset is not None else r for r in records], notes
    except CairnError as exc:
        return [], [f"model.weights.h5 not listed: {exc.message}"]


class _Window(io.RawIOBase):
    """A read-only window ``[start, start + size)`` of a file, seen as a file of its own."""

    def __init__(self, f: BinaryIO, start: int, size: int) -> None:
        self.f, self.start, self.size, self.pos = f, start, size, 0

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else self.pos + pos if whence == 1 else self.size + pos
        return self.pos

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        self.f.seek(self.start + self.pos)
        out = self.f.read(max(n, 0))
        self.pos += len(out)
        return out


def inspect_keras(path: str | Path) -> Inspection:
    p = Path(path)
    sp = str(p)
    try:
        with zipfile.ZipFile(p) as zf:
            members = {i.filename: i.file_size for i in zf.infolist()}
            config = _json(zf, "config.json", sp)
            meta = _json(zf, "metadata.json", sp)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FormatError(f"not a readable .keras archive: {exc}", path=sp) from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise FormatError("config.json is not a serialized Keras model", path=sp)
    try:
        objects = list(_objects(config))
    except LimitExceededError as exc:
        raise LimitExceededError(exc.detail, path=sp) from None
    imports = []
    warnings = []
    for obj in objects:
        module = obj.get("module")
        registered = obj.get("registered_name")
        name = registered if isinstance(registered, str) and registered else obj["class_name"]
        imports.append(f"{module}.{name}" if isinstance(module, str) and module else str(name))
        if obj["class_name"] == "__lambda__":
            warnings.append("a Lambda layer holds serialized Python bytecode: loading it executes code")
    inner = config.get("config")
    layers_raw = inner.get("layers") if isinstance(inner, dict) else None
    layers = [_layer(x) for x in layers_raw if isinstance(x, dict)] if isinstance(layers_raw, list) else []
    tensors: tuple[TensorRecord, ...] = ()
    if "model.weights.h5" in members:
        records, notes = _weights(p)
        tensors = tuple(records)
        warnings += notes
    metadata: dict[str, object] = {
        "model_class": config["class_name"],
        "layers": layers,
        "members": members,
    }
    if isinstance(meta, dict):
        metadata |= {k: v for k, v in meta.items() if isinstance(v, str | int | float)}
    return Inspection(
        sp,
        "keras",
        tensors,
        metadata,
        globals=tuple(dict.fromkeys(imports)),
        warnings=tuple(dict.fromkeys(warnings)),
    )
