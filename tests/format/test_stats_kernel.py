"""``--stats`` against a float64 numpy reference: every dtype, special values, chunk and task boundaries,
and bit-identical results whatever the number of threads."""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cairn.format import stats, stats_kernel
from cairn.format.inspection import TensorRecord
from cairn.format.reader import inspect_path
from cairn.format.stats import TensorStats, stats_all, tensor_stats


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 rows + 5 elements and tasks of 3 chunks: boundaries everywhere on small tensors."""
    monkeypatch.setattr(stats_kernel, "ROW", 64)
    monkeypatch.setattr(stats_kernel, "CHUNK", 3 * 64 + 5)
    monkeypatch.setattr(stats, "TASK_CHUNKS", 3)


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 → BF16 bits (NaN kept NaN)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), rounded).astype(np.uint16)


def _bf16_values(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _write_bf16(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {}
    blobs, at = [], 0
    for name, bits in tensors.items():
        header[name] = {"dtype": "BF16", "shape": list(bits.shape), "data_offsets": [at, at + bits.nbytes]}
        at += bits.nbytes
        blobs.append(bits.tobytes())
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def _expect(st: TensorStats | None, values: np.ndarray) -> None:
    """``st`` matches numpy in float64 over the same values."""
    assert st is not None
    v = values.astype(np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    assert st.count == v.size
    assert st.nan == int(np.count_nonzero(np.isnan(v)))
    assert st.inf == int(np.count_nonzero(np.isinf(v)))
    assert st.zeros == (np.count_nonzero(v == 0) / v.size if v.size else 0.0)
    assert st.flagged == bool(st.nan or st.inf)
    if finite.size == 0:
        assert (st.mean, st.std, st.min, st.max, st.absmax) == (None,) * 5
        return
    assert (st.min, st.max) == (finite.min(), finite.max())
    assert st.absmax == np.abs(finite).max()
    scale = float(np.abs(finite).max())
    unit = finite / scale if scale else finite  # the reference must not overflow either
    assert st.mean == pytest.approx(unit.mean() * scale, rel=1e-6, abs=1e-6 * scale)
    std = float(unit.std()) * scale  # finite even where the variance is past float64's range
    assert st.std == pytest.approx(std, rel=1e-5, abs=1e-6 * scale)


SIZES = [0, 1, 2, 63, 64, 65, 196, 197, 198, 3 * 197, 3 * 197 + 1, 5000]
FLOATS = ["float32", "float64", "float16"]
INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool"]


def _random(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool)
    if dtype in INTS:
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    x = rng.standard_normal(n) * 3 + 0.5
    x[rng.random(n) < 0.1] = 0
    return x.astype(dtype)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", FLOATS + INTS)
def test_every_dtype_and_size_matches_numpy(tmp_path: Path, dtype: str, n: int) -> None:
    x = _random(dtype, n, np.random.default_rng(n))
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec, threads=1)
    _expect(st, x)
    assert tensor_stats(rec, threads=3) == st


@pytest.mark.parametrize("n", SIZES)
def test_bf16_matches_numpy(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 2).astype(np.float32)
    x[rng.random(n) < 0.1] = 0
    if n > 10:
        x[3], x[7], x[9] = np.nan, np.inf, -np.inf
    bits = _bf16_bits(x)
    _write_bf16(tmp_path / "b.safetensors", {"b": bits})
    (rec,) = inspect_path(tmp_path / "b.safetensors").tensors
    assert rec.dtype == "BF16"
    st = tensor_stats(rec, threads=2)
    _expect(st, _bf16_values(bits))
    assert tensor_stats(rec, threads=1) == st


def _special(dtype: str) -> np.ndarray:
    info = np.finfo(dtype)
    tiny = float(info.smallest_subnormal)
    values = [0.0, -0.0, tiny, -tiny, 3 * tiny, float(info.tiny), 1.0, -2.5]
    values += [np.nan, np.inf, -np.inf, np.nan, float(info.max), -float(info.max)]
    return np.array(values * 40, dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_inf_zeros_and_denormals(tmp_path: Path, dtype: str) -> None:
    x = _special(dtype)
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec)
    _expect(st, x)
    assert st is not None and st.nan == 80 and st.inf == 80 and st.zeros == 80 / x.size


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_sum_that_overflows_is_not_counted_as_inf(tmp_path: Path, dtype: str) -> None:
    """Every value is finite, but their sum (and sum of squares) overflows the storage type."""
    big = float(np.finfo(dtype).max) / 2
    x = np.full(1000, big, dtype=dtype)
    x[::3] = -big / 4
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec)
    assert st is not None and (st.nan, st.inf, st.flagged) == (0, 0, False)
    _expect(st, x)


def test_plus_and_minus_inf_in_one_chunk_make_a_nan_sum_but_count_as_inf(tmp_path: Path) -> None:
    x = np.array([1.0, np.inf, 2.0, -np.inf, 3.0], np.float32)
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec)
    assert st is not None and (st.nan, st.inf, st.mean, st.min, st.max) == (0, 2, 2.0, 1.0, 3.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mean", [1e4, -3e6])
def test_large_mean_small_spread_keeps_the_std(tmp_path: Path, dtype: str, mean: float) -> None:
    """Σx² − n·mean² would cancel to noise: the chunk is centred first."""
    x = (mean + np.random.default_rng(3).standard_normal(3000)).astype(dtype)
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec)
    assert st is not None
    assert st.std == pytest.approx(x.astype(np.float64).std(), rel=1e-4)
    assert st.mean == pytest.approx(x.astype(np.float64).mean(), rel=1e-7)


def test_huge_float64_values_do_not_crash(tmp_path: Path) -> None:
    x = np.array([1e308, 1.5e308, -1e308, 1.7e308], np.float64)
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec)
    assert st is not None and (st.nan, st.inf, st.min, st.max) == (0, 0, -1e308, 1.7e308)
    assert st.mean == pytest.approx(0.8e308, rel=1e-12)
    assert st.std == pytest.approx(_exact_std(x), rel=1e-12)
    _expect(st, x)


def _exact_std(values: np.ndarray) -> float:
    """The population std of float64 values, exactly in rationals and then rounded: the variance is
    scaled by a power of four into float64's range before the square root."""
    xs = [Fraction(float(v)) for v in values]
    mean = sum(xs, Fraction(0)) / len(xs)
    var = sum(((x - mean) ** 2 for x in xs), Fraction(0)) / len(xs)
    if var == 0:
        return 0.0
    k = max(0, (var.numerator.bit_length() - var.denominator.bit_length()) // 2 - 400)
    return math.ldexp(math.sqrt(var / 4**k), k)


def _huge(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "spread":  # centred, deviations near 1e300: Σx² is past float64 from the first chunk
        return rng.standard_normal(2500) * 1e300
    if kind == "offset":  # a huge mean and a huge spread
        return 1e307 + rng.standard_normal(2500) * 3e306
    if kind == "extremes":  # ±max float64: std = max float64 exactly
        return np.tile([np.finfo(np.float64).max, -np.finfo(np.float64).max], 700)
    if kind == "opposite":  # each chunk is constant: only merging the chunks' means finds the spread
        return np.repeat([1.7e308, -1.7e308, 1.1e308, -0.3e308], 3 * 197)
    # "mixed": ordinary chunks merged with chunks whose partials are scaled
    x = rng.standard_normal(3000)
    x[1000:1300] *= 1e200
    x[2500] = -1.6e308
    return x


@pytest.mark.parametrize("kind", ["spread", "offset", "extremes", "opposite", "mixed"])
def test_float64_beyond_1e154_gets_a_finite_std_like_an_exact_reference(tmp_path: Path, kind: str) -> None:
    x = _huge(kind, np.random.default_rng(11))
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    runs = [st for t in (1, 3) for _, st in stats_all([rec], threads=t)]
    st = runs[0]
    assert st is not None and runs[1] == st  # the scaled path is as deterministic as the plain one
    assert math.isfinite(st.std) and st.std == pytest.approx(_exact_std(x), rel=1e-12)
    assert st.mean == pytest.approx(math.fsum(v / x.size for v in x.tolist()), rel=1e-12, abs=1e-300)
    assert (st.nan, st.inf, st.min, st.max) == (0, 0, x.min(), x.max())


def test_merging_partials_of_opposite_extreme_means() -> None:
    top = float(np.finfo(np.float64).max)
    a, b = stats_kernel.Partial(n=3, mean=-top, lo=-top, hi=-top), stats_kernel.Partial(n=3, mean=top)
    a.merge(b)
    assert a.mean == 0.0 and a.std == pytest.approx(top, rel=1e-15) and a.scale > 0
    plain = stats_kernel.Partial(n=2, mean=1.0, m2=2.0)
    plain.merge(stats_kernel.Partial(n=2, mean=3.0, m2=2.0))
    assert (plain.mean, plain.m2, plain.scale, plain.std) == (2.0, 8.0, 0, 2.0**0.5)


def test_results_are_bit_identical_for_any_thread_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    tensors = {
        f"t{i}": (rng.standard_normal(rng.integers(1, 4000)) * (i + 1)).astype(np.float32) for i in range(9)
    }
    save_file(tensors, tmp_path / "m.safetensors")
    info = inspect_path(tmp_path / "m.safetensors")
    runs = [[st for _, st in stats_all(info.tensors, threads=t)] for t in (1, 2, 3, 8)]
    assert all(run == runs[0] for run in runs[1:])
    for rec, st in zip(info.tensors, runs[0], strict=True):
        _expect(st, tensors[rec.name])


def test_big_endian_strided_and_compressed_tensors(tmp_path: Path) -> None:
    x = np.random.default_rng(5).standard_normal((40, 30))
    np.save(tmp_path / "be.npy", x.astype(">f4"))
    np.savez_compressed(tmp_path / "c.npz", c=x.astype(np.float16))
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    for name, values in (("be.npy", x.astype(np.float32)), ("c.npz", x.astype(np.float16)), ("f.npy", x)):
        (rec,) = inspect_path(tmp_path / name).tensors
        _expect(tensor_stats(rec, threads=2), values)


def test_skipped_dtypes_give_none(tmp_path: Path) -> None:
    path = tmp_path / "raw.bin"
    path.write_bytes(b"\0" * 64)
    for dtype in ("F8_E4M3", "C64", "Q4_K"):
        assert tensor_stats(TensorRecord("t", dtype, (4,), 8, str(path), 0)) is None
    assert tensor_stats(TensorRecord("t", "F32", (4,), 16)) is None  # no location


def _drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this system")
def test_cold_files_are_read_by_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a cold page cache the disk is the limit: --stats does not split the file between threads (two
    readers make the disk seek); on a warm one it uses them all. Same figures either way."""
    rng = np.random.default_rng(3)
    tensors = {f"w{i}": rng.standard_normal(300_000).astype(np.float32) for i in range(4)}
    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    recs = inspect_path(path).tensors
    warm = dict(stats_all(recs, threads=2))
    assert not stats._cold(recs)

    probe = tmp_path / "probe.bin"
    probe.write_bytes(b"x" * 65536)
    _drop_from_page_cache(probe)
    fd = os.open(probe, os.O_RDONLY)
    try:
        if stats._resident(fd, 0):
            pytest.skip("this filesystem keeps files in memory (tmpfs): a file cannot be cold")
    finally:
        os.close(fd)
    _drop_from_page_cache(path)  # (a probe may start reading its page in: probe another file first)
    used: list[int] = []
    real_run_all = stats.run_all

    def run_all(
        tasks: list[Callable[[], stats_kernel.Partial]], *, workers: int
    ) -> Iterator[stats_kernel.Partial]:
        used.append(workers)
        return real_run_all(tasks, workers=workers)

    monkeypatch.setattr(stats, "run_all", run_all)
    cold = dict(stats_all(recs, threads=2))
    assert used == [1]
    assert cold == warm

    used.clear()
    assert dict(stats_all(recs, threads=2)) == warm  # the file is in the page cache again
    assert used == [2]


def test_residency_probe_fails_safe(tmp_path: Path) -> None:
    """A byte past the end of the file, or a descriptor that cannot be read, is never 'resident'."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert stats._resident(fd, 0) or not hasattr(os, "RWF_NOWAIT")
        assert not stats._resident(fd, 1 << 20)
    finally:
        os.close(fd)
    assert not stats._resident(fd, 0)  # closed
