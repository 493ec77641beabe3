"""Compare the tensors of two inspections, across formats, chunk by chunk.

Tensors are matched by name. Each name ends in exactly one bucket: ``added`` (only in B), ``removed``
(only in A), ``shape_or_dtype`` (both, but the dtype or shape differs), ``identical`` (same dtype, shape and
bytes) or ``changed`` (same dtype and shape, different values: with the relative L2 difference
``‖a − b‖ / ‖a‖`` and the largest absolute difference). Bytes are compared first, so identical tensors
cost one streaming read of each; values are compared in float64 chunks. Tensors of dtypes without a numeric
view (FP8, quantized) are compared by bytes only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from cairn.format.arrays import iter_chunks, iter_raw, numeric_dtype
from cairn.format.inspection import Inspection, TensorRecord

__all__ = ["Change", "DiffResult", "diff_inspections", "diff_tensor"]


@dataclass(frozen=True)
class Change:
    name: str
    kind: str  # "identical" | "changed" | "shape_or_dtype" | "unreadable" (values not addressable)
    a: str  # "F32[3, 4]"
    b: str
    rel_l2: float | None = None
    max_abs: float | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = dict(vars(self))
        for key in ("rel_l2", "max_abs"):  # JSON has no NaN/Infinity
            value = out[key]
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = str(value)
        return out


@dataclass(frozen=True)
class DiffResult:
    a: str
    b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changes: tuple[Change, ...]

    def of_kind(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    @property
    def identical(self) -> bool:
        return not self.added and not self.removed and all(c.kind == "identical" for c in self.changes)

    def summary(self) -> str:
        return (
            f"{len(self.of_kind('identical'))} identical, {len(self.of_kind('changed'))} changed, "
            f"{len(self.of_kind('shape_or_dtype'))} changed in shape or dtype, "
            f"{len(self.added)} added, {len(self.removed)} removed"
            + (f", {len(self.of_kind('unreadable'))} not comparable" if self.of_kind("unreadable") else "")
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "summary": self.summary(),
            "added": list(self.added),
            "removed": list(self.removed),
            "changes": [c.to_dict() for c in self.changes],
        }


def _label(t: TensorRecord) -> str:
    return f"{t.dtype}{list(t.shape)}"


def _next_nonempty(it: Iterator[np.ndarray]) -> np.ndarray | None:
    for chunk in it:
        if chunk.size:
            return chunk
    return None


def _aligned(ia: Iterator[np.ndarray], ib: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs of equally long pieces of two element streams that were chunked differently (a strided
    torch view is read row by row, a contiguous tensor in flat chunks)."""
    a = b = np.zeros(0)
    while True:
        if a.size == 0:
            nxt = _next_nonempty(ia)
            if nxt is None:
                return
            a = nxt
        if b.size == 0:
            nxt = _next_nonempty(ib)
            if nxt is None:
                return
            b = nxt
        n = min(a.size, b.size)
        yield a[:n], b[:n]
        a, b = a[n:], b[n:]


def _bytes_equal(a: TensorRecord, b: TensorRecord) -> bool:
    ia = (_bytes(c) for c in iter_raw(a))
    ib = (_bytes(c) for c in iter_raw(b))
    return all(np.array_equal(x, y) for x, y in _aligned(ia, ib))


def _bytes(chunk: np.ndarray | None) -> np.ndarray:
    if chunk is None:
        return np.zeros(0, dtype=np.uint8)
    native = chunk.astype(chunk.dtype.newbyteorder("="), copy=False)
    return np.ascontiguousarray(native).view(np.uint8)


def diff_tensor(a: TensorRecord, b: TensorRecord) -> Change:
    """Compare two tensors of the same name."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return Change(a.name, "shape_or_dtype", _label(a), _label(b))
    if None in (a.offset, a.file, b.offset, b.file):  # values kept where cairn does not read them
        return Change(a.name, "unreadable", _label(a), _label(b))
    if _bytes_equal(a, b):
        return Change(a.name, "identical", _label(a), _label(b), 0.0, 0.0)
    if not numeric_dtype(a):
        return Change(a.name, "changed", _label(a), _label(b))
    diff_sq = norm_sq = 0.0
    max_abs = 0.0
    for ca, cb in _aligned(iter_chunks(a), iter_chunks(b)):
        xa = ca.astype(np.complex128 if ca.dtype.kind == "c" else np.float64)
        xb = cb.astype(xa.dtype)
        d = np.abs(xa - xb)
        with np.errstate(invalid="ignore"):
            diff_sq += float(np.sum(d * d))
            norm_sq += float(np.sum(np.abs(xa) ** 2))
            if d.size:
                max_abs = max(max_abs, float(np.max(d)))
    rel = math.sqrt(diff_sq) / math.sqrt(norm_sq) if norm_sq > 0 else (math.inf if diff_sq > 0 else math.nan)
    return Change(a.name, "changed", _label(a), _label(b), rel, max_abs)


def _names(info: Inspection, strip: Sequence[str]) -> dict[str, TensorRecord]:
    out: dict[str, TensorRecord] = {}
    for t in info.tensors:
        name = t.name
        for prefix in strip:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        out[name] = replace(t, name=name) if name != t.name else t
    return out


def diff_inspections(a: Inspection, b: Inspection, *, strip: Sequence[str] = ()) -> DiffResult:
    """Compare ``a`` and ``b`` by tensor name; a name starting with one of ``strip`` (``"state_dict."``,
    ``"module."``) is matched without that prefix, on either side."""
    ta, tb = _names(a, strip), _names(b, strip)
    changes = tuple(diff_tensor(ta[name], tb[name]) for name in ta if name in tb)
    return DiffResult(
        a.path,
        b.path,
        added=tuple(n for n in tb if n not in ta),
        removed=tuple(n for n in ta if n not in tb),
        changes=changes,
    )
