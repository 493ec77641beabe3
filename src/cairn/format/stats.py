"""Per-tensor statistics streamed through memory maps: mean, std, min, max, absmax, NaN/Inf, zeros.

Each tensor is read in chunks of :data:`cairn.format.arrays.CHUNK_ELEMENTS` elements
(:func:`cairn.format.arrays.iter_chunks`), so memory use is bounded by the chunk size and a file larger
than RAM works. Chunk results are merged with Chan et al.'s pairwise update for mean and variance
(numerically stable, no sum-of-squares cancellation). Mean, std, min, max and absmax are over the finite
values only; ``std`` is the population standard deviation. A tensor with any NaN or Inf is ``flagged``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from cairn.format.arrays import iter_chunks, numeric_dtype
from cairn.format.inspection import TensorRecord

__all__ = ["TensorStats", "stats_all", "tensor_stats"]


@dataclass(frozen=True)
class TensorStats:
    name: str
    count: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    absmax: float | None
    nan: int
    inf: int
    zeros: float  # fraction of elements equal to zero

    @property
    def flagged(self) -> bool:
        return self.nan > 0 or self.inf > 0

    def to_dict(self) -> dict[str, object]:
        out = dict(vars(self))
        out["flagged"] = self.flagged
        return out


@dataclass
class _Acc:
    n: int = 0  # finite values seen
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    nan: int = 0
    inf: int = 0
    zeros: int = 0

    def add(self, x: np.ndarray) -> None:
        if x.dtype.kind in "biu":
            x = x.astype(np.float64)
        elif x.dtype == np.float16:
            x = x.astype(np.float32)
        self.zeros += x.size - int(np.count_nonzero(x))
        total = float(np.add.reduce(x, dtype=np.float64))
        if not math.isfinite(total):
            nans = int(np.count_nonzero(np.isnan(x)))
            finite = np.isfinite(x)
            self.nan += nans
            self.inf += x.size - nans - int(np.count_nonzero(finite))
            x = x[finite]
            total = float(np.add.reduce(x, dtype=np.float64))
        n = x.size
        if n == 0:
            return
        mean = total / n
        d = x - x.dtype.type(mean)
        m2 = float(np.dot(d, d))
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        both = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / both
        self.m2 += m2 + delta * delta * self.n * n / both
        self.n = both

    def result(self, name: str, count: int) -> TensorStats:
        if self.n == 0:
            return TensorStats(name, count, None, None, None, None, None, self.nan, self.inf, self._zf(count))
        return TensorStats(
            name,
            count,
            self.mean,
            math.sqrt(max(self.m2, 0.0) / self.n),
            self.lo,
            self.hi,
            max(abs(self.lo), abs(self.hi)),
            self.nan,
            self.inf,
            self._zf(count),
        )

    def _zf(self, count: int) -> float:
        return self.zeros / count if count else 0.0


def tensor_stats(rec: TensorRecord) -> TensorStats | None:
    """Statistics of one tensor, or None when its dtype has no numeric view (quantized, FP8, complex)."""
    if not numeric_dtype(rec) or rec.dtype.startswith("C"):
        return None
    acc = _Acc()
    for chunk in iter_chunks(rec):
        acc.add(chunk)
    return acc.result(rec.name, rec.numel)


def stats_all(records: Iterable[TensorRecord]) -> Iterator[tuple[TensorRecord, TensorStats | None]]:
    for rec in records:
        yield rec, tensor_stats(rec)
