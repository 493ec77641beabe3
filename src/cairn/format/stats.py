"""Per-tensor statistics streamed through memory maps: mean, std, min, max, absmax, NaN/Inf, zeros.

Each tensor is read in chunks of :data:`cairn.format.arrays.CHUNK_ELEMENTS` elements
(:func:`cairn.format.arrays.iter_chunks`), so memory use is bounded by the chunk size and a file larger
than RAM works. Chunk results are merged with Chan et al.'s pairwise update for mean and variance
(numerically stable, no sum-of-squares cancellation). Mean, std, min, max and absmax are over the finite
values only; ``std`` is the population standard deviation. A tensor with any NaN or Inf is ``flagged``.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from cairn.format import arrays
from cairn.format.arrays import iter_chunks, numeric_dtype
from cairn.format.inspection import TensorRecord

__all__ = ["THREADS", "TensorStats", "stats_all", "tensor_stats"]

#: worker threads for chunk reductions (numpy releases the GIL); bench/inspect_stats.py compares 1 and 2
THREADS = min(4, os.cpu_count() or 1)


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


_local = threading.local()


def _scratch(n: int, dtype: type[np.generic]) -> np.ndarray:
    """A reusable per-thread buffer of at least ``n`` items (no allocation per chunk)."""
    key = f"scratch_{np.dtype(dtype).str}"
    buf: np.ndarray | None = getattr(_local, key, None)
    if buf is None or buf.size < n:
        buf = np.empty(n, dtype=dtype)
        setattr(_local, key, buf)
    return buf[:n]


def _ones(n: int, dtype: np.dtype[np.generic]) -> np.ndarray:
    key = f"ones_{dtype.str}"
    buf: np.ndarray | None = getattr(_local, key, None)
    if buf is None or buf.size < n:
        buf = np.ones(n, dtype=dtype)
        setattr(_local, key, buf)
    return buf[:n]


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

    @classmethod
    def of(cls, x: np.ndarray) -> _Acc:
        """The partial result of one chunk (numpy releases the GIL: chunks may run in worker threads)."""
        if x.dtype.kind in "biu":
            x = x.astype(np.float64)
        elif x.dtype == np.float16:
            x = x.astype(np.float32)
        acc = cls(zeros=int(np.count_nonzero(np.equal(x, 0, out=_scratch(x.size, np.bool_)))))
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(np.dot(x, _ones(x.size, x.dtype))) if x.size else 0.0
        if not math.isfinite(total):  # a finite sum means every value is finite
            nans = int(np.count_nonzero(np.isnan(x)))
            finite = np.isfinite(x)
            acc.nan = nans
            acc.inf = x.size - nans - int(np.count_nonzero(finite))
            x = x[finite]
            total = float(np.add.reduce(x, dtype=np.float64))
        if x.size == 0:
            return acc
        acc.n = x.size
        acc.mean = total / x.size
        with np.errstate(over="ignore"):
            square = float(np.dot(x, x))
        m2 = square - acc.n * acc.mean * acc.mean
        if not (math.isfinite(square) and m2 >= 0.5 * square):
            # |mean| is not small against the spread: subtract it first, or the difference cancels
            d = x - x.dtype.type(acc.mean)
            m2 = float(np.dot(d, d))
        acc.m2 = m2
        acc.lo, acc.hi = float(np.minimum.reduce(x)), float(np.maximum.reduce(x))
        return acc

    def merge(self, other: _Acc) -> None:
        """Chan et al.'s pairwise update of count, mean and squared deviations."""
        self.nan += other.nan
        self.inf += other.inf
        self.zeros += other.zeros
        if other.n == 0:
            return
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        if self.n == 0:
            self.n, self.mean, self.m2 = other.n, other.mean, other.m2
            return
        both = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / both
        self.m2 += other.m2 + delta * delta * self.n * other.n / both
        self.n = both

    def result(self, name: str, count: int) -> TensorStats:
        zeros = self.zeros / count if count else 0.0
        if self.n == 0:
            return TensorStats(name, count, None, None, None, None, None, self.nan, self.inf, zeros)
        std = math.sqrt(max(self.m2, 0.0) / self.n)
        absmax = max(abs(self.lo), abs(self.hi))
        return TensorStats(name, count, self.mean, std, self.lo, self.hi, absmax, self.nan, self.inf, zeros)


def tensor_stats(rec: TensorRecord, *, threads: int = THREADS) -> TensorStats | None:
    """Statistics of one tensor, or None when its dtype has no numeric view (quantized, FP8, complex).

    Chunks are reduced by ``threads`` worker threads, at most ``2 × threads`` chunks in flight.
    """
    if not numeric_dtype(rec) or rec.dtype.startswith("C"):
        return None
    acc = _Acc()
    chunks = iter_chunks(rec)
    if threads <= 1 or rec.numel <= arrays.CHUNK_ELEMENTS:  # one chunk: no pool
        for chunk in chunks:
            acc.merge(_Acc.of(chunk))
        return acc.result(rec.name, rec.numel)
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[_Acc]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_Acc.of, chunk))
            if len(pending) >= 2 * threads:
                acc.merge(pending.popleft().result())
        while pending:
            acc.merge(pending.popleft().result())
    return acc.result(rec.name, rec.numel)


def stats_all(records: Iterable[TensorRecord]) -> Iterator[tuple[TensorRecord, TensorStats | None]]:
    for rec in records:
        yield rec, tensor_stats(rec)
