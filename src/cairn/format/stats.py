"""Per-tensor statistics streamed through memory maps: mean, std, min, max, absmax, NaN/Inf, zeros.

Data flow: every numeric tensor is cut into tasks of :data:`TASK_CHUNKS` chunks (contiguous tensors
stored uncompressed; a strided view, a compressed member or encoded values are one task read through
:func:`cairn.format.arrays.iter_raw`). Worker threads (numpy releases the GIL in its reductions) take
tasks in order; each task maps the file, reduces its chunks with
:func:`cairn.format.stats_kernel.chunk_partial` and merges them in order. Task results are merged per
tensor in task order with Chan et al.'s pairwise update (numerically stable, no sum-of-squares
cancellation). Chunk and task boundaries depend only on the tensor, so the result is bit-identical for
any number of threads. Memory use is bounded by a chunk's scratch per thread: a file larger than RAM
works. Mean, std, min, max and absmax are over the finite values only; ``std`` is the population
standard deviation. A tensor with any NaN or Inf is ``flagged``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from cairn.format import stats_kernel
from cairn.format.arrays import flat_view, iter_raw, numeric_dtype
from cairn.format.inspection import TensorRecord
from cairn.format.stats_kernel import Partial, reduce_chunks
from cairn.format.threads import run_all

__all__ = ["TASK_CHUNKS", "THREADS", "TensorStats", "stats_all", "tensor_stats"]

#: worker threads for chunk reductions (numpy releases the GIL); bench/inspect_stats.py compares 1 and 2
THREADS = min(4, os.cpu_count() or 1)
#: chunks per task (16 MiB of float32): large enough that scheduling costs nothing, small enough to
#: spread one big tensor over every thread
TASK_CHUNKS = 16


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


def _result(acc: Partial, name: str, count: int) -> TensorStats:
    zeros = acc.zeros / count if count else 0.0
    if acc.n == 0:
        return TensorStats(name, count, None, None, None, None, None, acc.nan, acc.inf, zeros)
    std = acc.std
    absmax = max(abs(acc.lo), abs(acc.hi))
    return TensorStats(name, count, acc.mean, std, acc.lo, acc.hi, absmax, acc.nan, acc.inf, zeros)


def _has_stats(rec: TensorRecord) -> bool:
    return numeric_dtype(rec) and not rec.dtype.startswith("C")


def _resident(fd: int, at: int) -> bool:
    """Whether byte ``at`` of the file is in the page cache (False when the kernel cannot say)."""
    nowait = getattr(os, "RWF_NOWAIT", None)
    if nowait is None:
        return False
    try:
        return os.preadv(fd, [bytearray(1)], at, nowait) == 1
    except (BlockingIOError, OSError):
        return False


def _cold(recs: list[TensorRecord], probes: int = 16) -> bool:
    """Whether most of up to ``probes`` tensors, spread over ``recs``, start on a page that is not in
    the page cache: their bytes will come from the disk."""
    picked = recs[:: max(1, len(recs) // probes)][:probes]
    missing = seen = 0
    for rec in picked:
        if rec.file is None or rec.offset is None or rec.member is not None or rec.numel == 0:
            continue
        try:
            fd = os.open(rec.file, os.O_RDONLY)
        except OSError:
            continue
        try:
            seen += 1
            missing += not _resident(fd, rec.offset)
        finally:
            os.close(fd)
    return seen > 0 and 2 * missing > seen


def _range_task(rec: TensorRecord, start: int, stop: int) -> Partial:
    """Elements ``[start, stop)`` of a contiguous tensor, chunk by chunk, straight from the memory map."""
    flat = flat_view(rec)
    assert flat is not None
    chunk = stats_kernel.CHUNK
    return reduce_chunks((flat[at : min(at + chunk, stop)] for at in range(start, stop, chunk)), rec.dtype)


def _streamed_task(rec: TensorRecord) -> Partial:
    """A strided view or a compressed member: its C-order pieces as :func:`iter_raw` gives them."""
    chunk = stats_kernel.CHUNK
    pieces = iter_raw(rec, chunk)  # a compressed member's pieces may exceed a chunk: cut them
    return reduce_chunks((p[at : at + chunk] for p in pieces for at in range(0, p.size, chunk)), rec.dtype)


def _tasks(rec: TensorRecord) -> list[Callable[[], Partial]]:
    if rec.numel == 0:
        return []
    if rec.member is not None or rec.encoding is not None or not rec.contiguous:
        return [partial(_streamed_task, rec)]
    span = stats_kernel.CHUNK * TASK_CHUNKS
    return [partial(_range_task, rec, at, min(at + span, rec.numel)) for at in range(0, rec.numel, span)]


def stats_all(
    records: Iterable[TensorRecord], *, threads: int = THREADS
) -> Iterator[tuple[TensorRecord, TensorStats | None]]:
    """Each record with its statistics, or None when its dtype has no numeric view (quantized, FP8,
    complex, not addressable). All tensors' tasks share one pool of ``threads`` workers."""
    recs = list(records)
    if threads > 1 and _cold([r for r in recs if _has_stats(r)]):
        threads = 1  # the disk is the limit: a second thread only makes it seek between two regions
    tasks: list[Callable[[], Partial]] = []
    owners: list[int] = []
    for i, rec in enumerate(recs):
        if _has_stats(rec):
            more = _tasks(rec)
            tasks += more
            owners += [i] * len(more)
    accs = [Partial() for _ in recs]
    for i, part in zip(owners, run_all(tasks, workers=threads), strict=True):
        accs[i].merge(part)
    for rec, acc in zip(recs, accs, strict=True):
        yield rec, _result(acc, rec.name, rec.numel) if _has_stats(rec) else None


def tensor_stats(rec: TensorRecord, *, threads: int = THREADS) -> TensorStats | None:
    """Statistics of one tensor, or None when its dtype has no numeric view (quantized, FP8, complex)."""
    ((_, st),) = stats_all([rec], threads=threads)
    return st
