"""One chunk's partial statistics, computed so that only the first pass over the chunk reads memory.

``--stats`` needs a sum, a sum of squares, min, max, and zero/NaN/Inf counts: five or six numpy passes.
Over a large array each pass would stream the whole tensor from memory again, so tensors are cut into
chunks of :data:`CHUNK` elements. The first pass over a chunk pays the memory (or page-cache) read; the
others hit the cache. The size is measured (bench/inspect_stats.py ``--chunks``): 64 Ki elements
(256 KiB, inside a core's L2) lose to 256 Ki (1 MiB, L2 + L3) because each numpy call costs about a
microsecond and, with two threads, hands the GIL over. Choices that keep each pass cheap:

* sums and sums of squares are BLAS dot products over rows of :data:`ROW` elements (``np.vecdot``),
  accumulated in float32 inside a row and in float64 across rows and chunks. A row is shorter than
  OpenBLAS's threading threshold, so BLAS never starts threads of its own under ours;
* a finite sum proves that every value is finite (a NaN or an Inf element makes any float sum NaN or
  ±Inf: ``inf - inf`` is NaN), so the NaN/Inf pass runs only when the sum is not finite. A sum that
  overflowed although every value was finite is found by that pass (no NaN, no Inf element) and
  recomputed in float64; it is never reported as Inf elements;
* absmax is derived from min and max; zeros are counted from a boolean mask (``count_nonzero`` on bools
  is vectorised; on floats it is not);
* BF16 and F16 are widened per chunk into a per-thread scratch buffer (BF16 through a 32-bit view of
  pairs: two shifts/masks instead of a cast and a shift); integers and bools go to float64.

Float64 values beyond about 1e154 square past float64's range. When a chunk's squared deviations
overflow, they are summed divided by a power of two (:attr:`Partial.scale`, exact), and :meth:`Partial.merge`
switches to the same scaled form when a plain merge would overflow, so ``std`` stays finite whenever
it is representable. Only those chunks and merges take the slower path.

Chunk boundaries never depend on the number of threads, and :meth:`Partial.merge` is applied in a fixed
order by the caller, so results are bit-identical whatever the thread count.

Float32 chunks first go through ``cairn.format._fused`` when it was built (an optional C extension,
setup.py): one pass computes the sum, the sum of squares (float32 lanes, double across blocks), min, max
and zeros, so the chunk is read from memory once and not five times. When a sum comes out non-finite or
the variance would cancel, the chunk is redone by the numpy path below, which handles those cases.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

try:
    from cairn.format import _fused

    FUSED = True
except ImportError:  # built without a C compiler: the numpy path does everything
    FUSED = False

__all__ = ["CHUNK", "FUSED", "ROW", "Partial", "chunk_partial", "reduce_chunks", "widen"]

#: elements per chunk (1 MiB of float32); bench/inspect_stats.py ``--chunks`` measures the choice
CHUNK = 1 << 18
#: elements per BLAS dot (below OpenBLAS's 10,000-element threading threshold)
ROW = 2048
#: a BF16 chunk whose values are all smaller than this goes to numpy: the AVX-512 BF16 dot products
#: flush subnormal inputs and products to zero, which only matters when nothing larger is there
TINY = 2.0**-60
#: exponent bound of the scaled form: values divided by ``2**scale`` stay below ``2**_HEADROOM``, so a
#: squared deviation times any element count (< 2**63) stays inside float64 (< 2**1024)
_HEADROOM = 450

_local = threading.local()


def _buf(n: int, dtype: type[np.generic], slot: str = "") -> np.ndarray:
    """A reusable per-thread buffer of ``n`` items of ``dtype`` (no allocation per chunk); buffers
    with different ``slot`` names never alias."""
    key = slot + np.dtype(dtype).str
    buf: np.ndarray | None = getattr(_local, key, None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, CHUNK), dtype=dtype)
        setattr(_local, key, buf)
    return buf[:n]


def _ones(dtype: np.dtype[np.generic]) -> np.ndarray:
    key = "ones" + dtype.str
    buf: np.ndarray | None = getattr(_local, key, None)
    if buf is None or buf.size < ROW:
        buf = np.ones(ROW, dtype=dtype)
        setattr(_local, key, buf)
    return buf[:ROW]


def _exponent(x: float) -> int:
    """The binary exponent ``e`` with ``2**(e-1) <= |x| < 2**e`` (0 for zero)."""
    return math.frexp(x)[1]


@dataclass
class Partial:
    """Statistics of the values seen so far; ``mean``/``m2``/``lo``/``hi`` are over the ``n`` finite ones.

    ``m2`` is the sum of squared deviations in units of ``4**scale``: float64 values above about 1e154
    square past float64's range, so their deviations are summed divided by ``2**scale`` (exact: a power
    of two). ``scale`` is 0 unless that happened; :attr:`std` is then still finite.
    """

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean, divided by 4**scale
    lo: float = math.inf
    hi: float = -math.inf
    nan: int = 0
    inf: int = 0
    zeros: int = 0
    scale: int = 0

    @property
    def std(self) -> float:
        """The population standard deviation of the ``n`` finite values (0.0 when there are none)."""
        return math.ldexp((max(self.m2, 0.0) / self.n) ** 0.5, self.scale) if self.n else 0.0

    def merge(self, other: Partial) -> None:
        """Chan et al.'s pairwise update of count, mean and squared deviations."""
        self.nan += other.nan
        self.inf += other.inf
        self.zeros += other.zeros
        if other.n == 0:
            return
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        if self.n == 0:
            self.n, self.mean, self.m2, self.scale = other.n, other.mean, other.m2, other.scale
            return
        both = self.n + other.n
        delta = other.mean - self.mean
        if self.scale == other.scale == 0:
            m2 = self.m2 + (other.m2 + delta * delta * self.n * other.n / both)
            if m2 < math.inf:  # then delta < 1.4e154 and delta * n cannot overflow either
                self.mean += delta * other.n / both
                self.m2, self.n = m2, both
                return
        self._merge_scaled(other, both)

    def _merge_scaled(self, other: Partial, both: int) -> None:
        """The same update with every quantity divided by ``2**scale``, the scale raised until the
        squared deviations fit float64 (only when values beyond about 1e154 are merged)."""
        scale = max(self.scale, other.scale, max(_exponent(self.mean), _exponent(other.mean)) - _HEADROOM)
        for _ in range(40):  # 40 steps of 64 take any finite value below 1
            a, b = math.ldexp(self.mean, -scale), math.ldexp(other.mean, -scale)
            delta = b - a
            m2 = (
                math.ldexp(self.m2, 2 * (self.scale - scale))
                + math.ldexp(other.m2, 2 * (other.scale - scale))
                + delta * delta * self.n * other.n / both
            )
            if m2 != math.inf:  # finite (or NaN, which no raising of the scale would fix)
                break
            scale += 64
        self.mean = math.ldexp(a + delta * other.n / both, scale)
        self.m2, self.scale, self.n = m2, scale, both


def widen(raw: np.ndarray, dtype: str) -> np.ndarray:
    """A flat chunk of storage values (BF16 as uint16) as float32 or float64, in native byte order.

    Float32 and float64 chunks are returned as they are (a view of the memory map); the others are
    converted into a per-thread scratch buffer that the next call overwrites. BF16 values may come out
    in a different order: statistics do not depend on it.
    """
    if not raw.dtype.isnative:
        raw = raw.astype(raw.dtype.newbyteorder("="))
    if dtype == "BF16":
        return _bf16(raw)
    if raw.dtype in (np.float32, np.float64):
        return raw
    # float16 → float32 exactly; integers and bools → float64 (exact up to 2**53)
    out = _buf(raw.size, np.float32 if raw.dtype == np.float16 else np.float64)
    np.copyto(out, raw, casting="unsafe")
    return out


def _bf16(raw: np.ndarray) -> np.ndarray:
    """BF16 bits (uint16) → float32: a BF16 value is the upper half of the float32 with the same bits."""
    n = raw.size
    out = _buf(n, np.float32)
    bits = out.view(np.uint32)
    pairs = n // 2
    if sys.byteorder != "little" or not raw.flags.c_contiguous or pairs == 0:
        np.left_shift(raw, 16, out=bits, dtype=np.uint32)
        return out
    # On a little-endian machine a uint32 view of two uint16 holds the first in its low half and the
    # second in its high half: one shift and one mask give both as float32 bits.
    both = raw[: 2 * pairs].view(np.uint32)
    np.left_shift(both, 16, out=bits[:pairs])
    np.bitwise_and(both, np.uint32(0xFFFF0000), out=bits[pairs : 2 * pairs])
    if n % 2:
        bits[n - 1] = np.uint32(raw[n - 1]) << 16
    return out


def _dot_sum(x: np.ndarray, y: np.ndarray | None) -> float:
    """Σ x (y None) or Σ x·y: float32/64 BLAS dots over rows of ROW, the row results summed in float64."""
    rows = x.size // ROW
    total = 0.0
    if rows:
        head = x[: rows * ROW].reshape(rows, ROW)
        other = _ones(x.dtype) if y is None else y[: rows * ROW].reshape(rows, ROW)
        total = sum(np.vecdot(head, other).tolist())  # in order, in float64
    if rows * ROW < x.size:
        tail = x[rows * ROW :].astype(np.float64)
        total += float(np.add.reduce(tail)) if y is None else float(np.dot(tail, y[rows * ROW :]))
    return total


def _sum64(x: np.ndarray) -> float:
    """Σ x accumulated in float64 (pairwise): the slow path for sums that overflowed in float32."""
    return float(np.add.reduce(x, dtype=np.float64))


def _sumsq64(x: np.ndarray, shift: float, scale: int = 0) -> float:
    """Σ ((x - shift) / 2**scale)² in float64, one ROW-sized piece at a time (bounded scratch, no BLAS
    threads). Both ``x`` and ``shift`` are divided by the power of two first, so nothing overflows."""
    total = 0.0
    factor, shifted = math.ldexp(1.0, -scale), math.ldexp(shift, -scale)
    for start in range(0, x.size, ROW):
        d = x[start : start + ROW].astype(np.float64)
        if scale:
            d *= factor
        d -= shifted
        total += float(np.dot(d, d))
    return total


def reduce_chunks(chunks: Iterable[np.ndarray], dtype: str) -> Partial:
    """The merged partial statistics of flat chunks of storage values (``dtype`` is the record's
    dtype name), merged in order."""
    acc = Partial()
    with np.errstate(over="ignore", invalid="ignore"):  # float32 overflow is detected and redone below
        for raw in chunks:
            part = _fused_half(raw, dtype) if FUSED and dtype in ("BF16", "F16") else None
            acc.merge(part if part is not None else chunk_partial(widen(raw, dtype)))
    return acc


def _fused_half(raw: np.ndarray, dtype: str) -> Partial | None:
    """A BF16 (uint16 bits) or F16 chunk through the C kernel, widened in registers; None when the chunk
    must take the numpy path (not native and contiguous, no F16C, or a result to redo)."""
    if raw.size == 0 or not (raw.dtype.isnative and raw.flags.c_contiguous and raw.flags.aligned):
        return None
    try:
        found = _fused.bf16_partial(raw) if dtype == "BF16" else _fused.f16_partial(raw)
    except NotImplementedError:  # float16 without the AVX2/F16C loop
        return None
    _, _, lo, hi, _ = found
    if dtype == "BF16" and max(-lo, hi) < TINY:
        return None  # the AVX-512 BF16 sums read subnormals as zero: numpy sums such a chunk exactly
    return _accept(found, raw.size)


def _accept(found: tuple[float, float, float, float, int], n: int) -> Partial | None:
    """The C kernel's (sum, sum of squares, min, max, zeros) as a Partial, or None when the sums are not
    finite (NaN, Inf, float32 overflow) or the variance would cancel: numpy then redoes the chunk."""
    total, square, lo, hi, zeros = found
    if not (math.isfinite(total) and math.isfinite(square)):
        return None
    mean = total / n
    m2 = square - total * mean
    if m2 < 0.5 * square:  # |mean| is not small against the spread (see chunk_partial's centred path)
        return None
    return Partial(n=n, mean=mean, m2=max(m2, 0.0), lo=lo, hi=hi, zeros=int(zeros))


def chunk_partial(x: np.ndarray) -> Partial:
    """The partial statistics of one flat float32/float64 chunk (see the module docstring).

    Callers silence numpy's overflow warnings (:func:`reduce_chunks` does): an overflow is handled here.
    """
    n = x.size
    if n == 0:
        return Partial()
    if FUSED and x.dtype == np.float32 and x.flags.c_contiguous and x.flags.aligned:
        fast = _accept(_fused.f32_partial(x.view(np.float32)), n)
        if fast is not None:
            return fast
    part = Partial(zeros=int(np.count_nonzero(np.equal(x, 0, out=_buf(n, np.bool_)))))
    total = _dot_sum(x, None)
    if not math.isfinite(total):  # a NaN/Inf element, or a float32 overflow of finite values
        finite = np.isfinite(x, out=_buf(n, np.bool_))
        kept = int(np.count_nonzero(finite))
        if kept < n:
            part.nan = int(np.count_nonzero(np.isnan(x)))
            part.inf = n - kept - part.nan
            if kept == 0:
                return part
            x = x[finite]
        total = _sum64(x)
    count = x.size
    # float64 values near its limit: the mean is representable even when the sum is not
    mean = total / count if math.isfinite(total) else float(np.add.reduce(x / count))
    square = _dot_sum(x, x)
    m2 = square - total * mean
    if not (math.isfinite(square) and m2 >= 0.5 * square):
        # |mean| is not small against the spread (or Σx² overflowed float32): the difference would
        # cancel, so subtract the mean first
        m2 = math.nan
        shift = x.dtype.type(mean)  # rounded to the chunk's type, so x - shift is exact near the mean
        if np.isfinite(shift):
            d = np.subtract(x, shift, out=_buf(count, x.dtype.type, "centred"))
            # Σd also corrects the mean: a float32 Σx is only as exact as the mean's magnitude allows
            centred_sum, centred_square = _dot_sum(d, None), _dot_sum(d, d)
            if math.isfinite(centred_sum) and math.isfinite(centred_square):
                mean = float(shift) + centred_sum / count
                m2 = centred_square - centred_sum * centred_sum / count
        if not math.isfinite(m2):  # the spread itself overflows the chunk's type: float64 throughout
            m2 = _sumsq64(x, mean)
    part.lo, part.hi = float(np.minimum.reduce(x)), float(np.maximum.reduce(x))
    if not math.isfinite(m2):  # float64 deviations beyond about 1e154: square them divided by 2**scale
        part.scale = max(0, _exponent(max(-part.lo, part.hi)) - _HEADROOM)
        m2 = _sumsq64(x, mean, part.scale)
    part.n, part.mean, part.m2 = count, mean, max(m2, 0.0)
    return part
