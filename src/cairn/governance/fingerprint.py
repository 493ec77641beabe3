"""Lineage fingerprints of weight files: per-tensor hashes plus small value sketches, and their comparison.

A fingerprint records, for every tensor, its dtype, shape, the sha256 of its bytes and a *sketch*: the
values of :data:`SKETCH_SIZE` elements at evenly spaced positions, read while the bytes stream through
the hash (one sequential read per file, nothing loaded whole). Comparing two fingerprints gives the
byte-weighted share of identical tensors and the byte-weighted cosine similarity of the sketches of the
changed ones, which tells a copy, a dtype-cast/quantized copy, a fine-tune, a partial update (a merged
LoRA, frozen layers) and an unrelated model of the same architecture apart.

Only safetensors is read (through :mod:`cairn.format.safetensors`); torch pickle files raise
:class:`~cairn.errors.UnsupportedFormatError` ("not supported yet") and are never unpickled.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cairn.errors import FormatError, NotFoundError, UnsupportedFormatError
from cairn.format.safetensors import DTYPE_SIZES, read_header_path

__all__ = [
    "SKETCH_SIZE",
    "Comparison",
    "Fingerprint",
    "TensorPrint",
    "compare",
    "fingerprint_file",
    "fingerprint_model",
]

SKETCH_SIZE = 64
_CHUNK = 8 << 20
_TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1",
}  # fmt: skip


@dataclass(frozen=True)
class TensorPrint:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    sha256: str
    sketch: tuple[float, ...]  # empty when the dtype has no numeric decoding here (F8 types)


@dataclass(frozen=True)
class Fingerprint:
    tensors: dict[str, TensorPrint]

    def to_dict(self) -> dict[str, Any]:
        return {
            name: {
                "dtype": t.dtype,
                "shape": list(t.shape),
                "nbytes": t.nbytes,
                "sha256": t.sha256,
                "sketch": list(t.sketch),
            }
            for name, t in self.tensors.items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        try:
            return cls(
                {
                    str(n): TensorPrint(
                        str(t["dtype"]),
                        tuple(int(d) for d in t["shape"]),
                        int(t["nbytes"]),
                        str(t["sha256"]),
                        tuple(float(v) for v in t["sketch"]),
                    )
                    for n, t in data.items()
                }
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"not a fingerprint: {exc!r}") from None


def _positions(numel: int) -> list[int]:
    if numel <= SKETCH_SIZE:
        return list(range(numel))
    return [i * numel // SKETCH_SIZE for i in range(SKETCH_SIZE)]


def _decode(raw: bytes, dtype: str) -> list[float]:
    code = _NUMPY_DTYPES.get(dtype)
    if code is None:
        return []
    arr = np.frombuffer(raw, dtype=np.dtype(code))
    if dtype == "BF16":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    values = arr.astype(np.float64)
    return [float(v) if math.isfinite(v) else 0.0 for v in values]


def fingerprint_file(path: str | Path) -> Fingerprint:
    """Fingerprint one weight file (safetensors)."""
    p = Path(path)
    if p.suffix.lower() in _TORCH_SUFFIXES:
        raise UnsupportedFormatError(
            "torch pickle checkpoints are not supported for fingerprints yet", path=p
        )
    if p.suffix.lower() != ".safetensors":
        raise UnsupportedFormatError("only .safetensors files can be fingerprinted", path=p)
    header = read_header_path(p)
    out: dict[str, TensorPrint] = {}
    with p.open("rb") as f:
        for info in sorted(header.tensors.values(), key=lambda t: t.begin):
            f.seek(header.data_start + info.begin)
            item = DTYPE_SIZES[info.dtype]
            wanted = [pos * item for pos in _positions(info.numel)]
            digest, picked, done, w = hashlib.sha256(), bytearray(), 0, 0
            while done < info.nbytes:
                chunk = f.read(min(_CHUNK, info.nbytes - done))
                if not chunk:
                    raise FormatError(f"file ends inside tensor {info.name!r}", path=p)
                digest.update(chunk)
                while w < len(wanted) and wanted[w] < done + len(chunk):
                    picked += chunk[wanted[w] - done : wanted[w] - done + item]
                    w += 1
                done += len(chunk)
            out[info.name] = TensorPrint(
                info.dtype,
                info.shape,
                info.nbytes,
                digest.hexdigest(),
                tuple(_decode(bytes(picked), info.dtype)),
            )
    return Fingerprint(out)


def fingerprint_model(path: str | Path) -> Fingerprint:
    """Fingerprint a weight file, or every ``*.safetensors`` file of a model directory (shards merged)."""
    p = Path(path)
    if p.is_file():
        return fingerprint_file(p)
    if not p.is_dir():
        raise NotFoundError(f"{p} does not exist")
    files = sorted(p.glob("*.safetensors"))
    if not files:
        torch_files = [f for f in sorted(p.iterdir()) if f.suffix.lower() in _TORCH_SUFFIXES]
        if torch_files:
            raise UnsupportedFormatError(
                "torch pickle checkpoints are not supported for fingerprints yet", path=torch_files[0]
            )
        raise NotFoundError(f"{p} holds no safetensors weights")
    tensors: dict[str, TensorPrint] = {}
    for f in files:
        for name, t in fingerprint_file(f).tensors.items():
            if name in tensors:
                raise FormatError(f"tensor {name!r} appears in two shards", path=f)
            tensors[name] = t
    return Fingerprint(tensors)


@dataclass(frozen=True)
class Comparison:
    shared: float  # byte share of the child's tensors that the other model has with the same shape
    identical: float  # byte share of those shared tensors that are bit-identical
    similarity: float  # byte-weighted cosine similarity of the changed shared tensors' sketches (1.0 if none)
    dtype_changed: float  # byte share of shared tensors whose dtype differs
    verdict: str  # copy | quantized | partial-update | finetune | weakly-related | unrelated

    @property
    def supports_lineage(self) -> bool:
        return self.verdict not in {"unrelated", "weakly-related"}


def _cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    if not a or len(a) != len(b):
        return 0.0
    x, y = np.asarray(a), np.asarray(b)
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 or ny == 0.0:
        return 1.0 if nx == ny else 0.0
    return float(np.dot(x, y) / (nx * ny))


def compare(child: Fingerprint, other: Fingerprint) -> Comparison:
    """How ``child``'s weights relate to ``other``'s."""
    total = sum(t.nbytes for t in child.tensors.values()) or 1
    shared_b = identical_b = changed_b = dtype_b = 0
    sim_sum = 0.0
    for name, t in child.tensors.items():
        o = other.tensors.get(name)
        if o is None or o.shape != t.shape:
            continue
        shared_b += t.nbytes
        if o.sha256 == t.sha256 and o.dtype == t.dtype:
            identical_b += t.nbytes
            continue
        changed_b += t.nbytes
        dtype_b += t.nbytes if o.dtype != t.dtype else 0
        sim_sum += t.nbytes * _cosine(t.sketch, o.sketch)
    shared = shared_b / total
    identical = identical_b / shared_b if shared_b else 0.0
    similarity = sim_sum / changed_b if changed_b else 1.0
    dtype_changed = dtype_b / shared_b if shared_b else 0.0
    if shared < 0.5:
        verdict = "unrelated"
    elif identical == 1.0:
        verdict = "copy"
    elif dtype_changed > 0.5 and similarity >= 0.98:
        verdict = "quantized"
    elif similarity >= 0.9:
        verdict = "partial-update" if identical >= 0.2 else "finetune"
    elif similarity >= 0.5:
        verdict = "weakly-related"
    else:
        verdict = "unrelated"
    return Comparison(
        round(shared, 4), round(identical, 4), round(similarity, 4), round(dtype_changed, 4), verdict
    )
