"""Convert a PyTorch pickle checkpoint to safetensors without executing it.

Formats: torch zip, the legacy non-zip format and the pre-1.0 tar format (:func:`read_torch`).
Steps: walk every pickle in the file (:mod:`cairn.format.torch_files`, :mod:`cairn.format.torch_tar`) →
refuse unless every global they import and every call they make is on
:data:`cairn.format.objtree.TENSOR_ALLOWLIST` (tensor rebuilds, storage classes, ``OrderedDict``; the tar
format's tensor headers may also name ``torch.<T>Tensor``) → check names are unique and dtypes exist in safetensors → stream each tensor's bytes
from the memory map into a temporary file next to the target → fsync → rename. A crash leaves no partial
target. Values that are not tensors (``step``, ``epoch``...) are not carried over; they are listed in the
result. The output is bit-identical to what ``torch.load(weights_only=True)`` gives for the same tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import ConflictError, FormatError, UnsafeContentError, UnsupportedFormatError
from cairn.format.arrays import byte_view
from cairn.format.inspection import TensorRecord
from cairn.format.objtree import TENSOR_ALLOWLIST, qualname
from cairn.format.pickle_vm import Global
from cairn.format.safetensors import DTYPE_SIZES, write_safetensors
from cairn.format.torch_files import TorchCheckpoint, read_torch
from cairn.format.torch_tar import TENSOR_TYPES

__all__ = ["ConvertResult", "RefusedGlobalsError", "convert_to_safetensors"]


class RefusedGlobalsError(UnsafeContentError):
    """The pickle references globals outside the tensor-rebuild allowlist; nothing was written."""

    code = "refused_globals"

    def __init__(self, path: str, refused: Sequence[str], found: Sequence[str]) -> None:
        super().__init__(
            f"{path}: refusing to convert: the pickle references {', '.join(refused)}, which are not on the "
            f"tensor-rebuild allowlist (all globals: {', '.join(found)})"
        )
        self.path = path
        self.refused = list(refused)
        self.globals = list(found)


@dataclass(frozen=True)
class ConvertResult:
    source: str
    target: str
    tensors: int
    nbytes: int
    sha256: str
    dropped: tuple[str, ...]  # top-level keys that held no tensors

    def to_dict(self) -> dict[str, object]:
        return {**vars(self), "dropped": list(self.dropped)}


def _check_allowed(ckpt_path: str, ckpt: TorchCheckpoint) -> None:
    """Every pickle in the file (the tree and the format's headers) may import only allowlisted globals
    and call only globals."""
    walks = (ckpt.pickle, *ckpt.headers)
    names = list(dict.fromkeys(qualname(g) for w in walks for g in w.globals))
    allowed = TENSOR_ALLOWLIST | (TENSOR_TYPES if ckpt.inspection.format == "torch-tar" else frozenset())
    refused = [n for n in names if n not in allowed]
    if not all(isinstance(c.func, Global) for w in walks for c in w.calls):
        refused.append("<a call of a computed function>")
    if refused:
        raise RefusedGlobalsError(ckpt_path, refused, names)


def _dropped(structure: object) -> tuple[str, ...]:
    if not isinstance(structure, dict):
        return ()
    return tuple(
        k
        for k, v in structure.items()
        if not (isinstance(v, str) and v.startswith("tensor ")) and not isinstance(v, dict)
    )


def convert_to_safetensors(src: str | Path, dst: str | Path, *, overwrite: bool = False) -> ConvertResult:
    """Write the tensors of the torch checkpoint ``src`` to the safetensors file ``dst``."""
    source, target = Path(src), Path(dst)
    if target.exists() and not overwrite:
        raise ConflictError(f"{target} already exists")
    ckpt = read_torch(source)
    _check_allowed(str(source), ckpt)
    records = ckpt.inspection.tensors
    seen: set[str] = set()
    for rec in records:
        if rec.name in seen:
            raise FormatError(f"two tensors would both be named {rec.name!r}", path=source)
        seen.add(rec.name)
        if rec.dtype not in DTYPE_SIZES:
            raise UnsupportedFormatError(
                f"tensor {rec.name!r} has dtype {rec.dtype}, which safetensors lacks", path=source
            )

    def items() -> Iterator[tuple[str, str, tuple[int, ...], memoryview]]:
        for rec in records:
            yield rec.name, rec.dtype, rec.shape, _bytes(rec)

    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            result = write_safetensors(f, items(), {"format": "pt"})
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return ConvertResult(
        str(source),
        str(target),
        len(records),
        result.size,
        result.sha256,
        _dropped(ckpt.inspection.structure),
    )


def _bytes(rec: TensorRecord) -> memoryview:
    return byte_view(rec)
