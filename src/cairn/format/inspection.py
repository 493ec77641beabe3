"""The common result of every reader: an :class:`Inspection` listing tensors and what else a file holds.

Readers (safetensors, NumPy, torch, GGUF, ONNX, Keras, generic pickle) each turn bytes into an
``Inspection``; the CLI renders it, ``stats`` and ``diff`` read tensor data through the
:class:`TensorRecord` locations it carries (file, absolute offset, strides) by memory map, never by loading
the file. Everything here is plain data: frozen dataclasses that serialise to JSON with :func:`to_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConfigSummary",
    "Inspection",
    "TensorRecord",
    "dtype_totals",
    "tree",
]


@dataclass(frozen=True)
class TensorRecord:
    """One tensor: its name, dtype (safetensors-style names such as ``F32``, or a GGUF/ONNX type name),
    shape, byte length, and where its bytes lie.

    ``offset`` is the absolute file offset of the first byte of the tensor's *storage*, or, when ``member``
    names a (compressed) zip member, the offset inside that member's uncompressed bytes. ``storage_offset``
    and ``strides`` are in elements (as torch records them; None means C-contiguous). ``offset`` is None
    when the bytes are not addressable at all (data inside a pickle, unknown layout). ``encoding`` names
    values that are stored encoded (ONNX typed fields: ``offset``/``encoded_length`` delimit the message
    that holds them) and are decoded on reading instead of mapped.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str | None = None
    offset: int | None = None
    strides: tuple[int, ...] | None = None
    storage_offset: int = 0
    member: str | None = None
    big_endian: bool = False
    encoding: str | None = None  # values must be decoded (``onnx-typed:<field>``), not mapped
    encoded_length: int = 0  # bytes of the encoded message at ``offset``

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def contiguous(self) -> bool:
        if self.strides is None:
            return True
        expected = 1
        for dim, stride in zip(reversed(self.shape), reversed(self.strides), strict=True):
            if dim != 1 and stride != expected:
                return False
            expected *= dim
        return True

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "parameters": self.numel,
            "nbytes": self.nbytes,
        }
        if self.file is not None:
            out["file"] = self.file
        if self.member is not None:
            out["member"] = self.member
        if self.offset is not None:
            out["offset"] = self.offset
        if self.big_endian:
            out["big_endian"] = True
        if self.encoding is not None:
            out["encoding"] = self.encoding
        if self.strides is not None:
            out["strides"] = list(self.strides)
            out["storage_offset"] = self.storage_offset
        return out


@dataclass(frozen=True)
class ConfigSummary:
    """What a Hugging Face-style ``config.json`` says about the architecture."""

    architectures: tuple[str, ...] = ()
    model_type: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    num_attention_heads: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    torch_dtype: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items() if v not in (None, ())
        }


@dataclass(frozen=True)
class Inspection:
    """What a file or directory holds, read structurally. ``format`` is the detected format's name.

    ``globals`` lists the ``module.name`` imports a pickle references (empty for pickle-free formats);
    ``structure`` is a JSON-ready rendering of nested containers where the format has them (torch
    checkpoints, pickles); ``warnings`` are things a reader noticed but did not fail on.
    """

    path: str
    format: str
    tensors: tuple[TensorRecord, ...] = ()
    metadata: Mapping[str, object] = field(default_factory=dict)
    config: ConfigSummary | None = None
    globals: tuple[str, ...] = ()
    structure: object = None
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    @property
    def parameters(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def tensor_map(self) -> dict[str, TensorRecord]:
        return {t.name: t for t in self.tensors}

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "format": self.format,
            "parameters": self.parameters,
            "nbytes": self.nbytes,
            "totals_by_dtype": dtype_totals(self.tensors),
            "tensors": [t.to_dict() for t in self.tensors],
            "metadata": dict(self.metadata),
        }
        if self.files:
            out["files"] = list(self.files)
        if self.config is not None:
            out["config"] = self.config.to_dict()
        if self.globals:
            out["globals"] = list(self.globals)
        if self.structure is not None:
            out["structure"] = self.structure
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def dtype_totals(tensors: Iterable[TensorRecord]) -> dict[str, dict[str, int]]:
    """``{dtype: {"tensors": n, "parameters": p, "nbytes": b}}`` in order of first appearance."""
    totals: dict[str, dict[str, int]] = {}
    for t in tensors:
        entry = totals.setdefault(t.dtype, {"tensors": 0, "parameters": 0, "nbytes": 0})
        entry["tensors"] += 1
        entry["parameters"] += t.numel
        entry["nbytes"] += t.nbytes
    return totals


def tree(tensors: Iterable[TensorRecord]) -> dict[str, object]:
    """Group tensors by module path (``a.b.weight`` → ``{"a": {"b": {"weight": "F32[3, 4]"}}}``).

    Every module node also gets a ``"#parameters"`` count of everything below it. A name that is both a
    tensor and a module prefix keeps the tensor under the key ``""`` of that module.
    """
    root: dict[str, Any] = {"#parameters": 0}
    for t in tensors:
        parts = t.name.split(".")
        node = root
        for part in parts[:-1]:
            node["#parameters"] += t.numel
            child = node.get(part)
            if not isinstance(child, dict):
                child = {"#parameters": 0} if child is None else {"#parameters": 0, "": child}
                node[part] = child
            node = child
        node["#parameters"] += t.numel
        leaf = f"{t.dtype}{list(t.shape)}"
        existing = node.get(parts[-1])
        if isinstance(existing, dict):
            existing[""] = leaf
        else:
            node[parts[-1]] = leaf
    return root
