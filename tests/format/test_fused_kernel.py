"""The optional C kernel of ``--stats`` (``cairn.format._fused``): one pass over float32 gives what the
numpy path gives, with both of its loops (AVX2 and portable), and hands every hard case back to numpy."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.format import stats_kernel
from cairn.format.stats_kernel import chunk_partial

fused = pytest.importorskip("cairn.format._fused", reason="built without a C compiler")

SIZES = [1, 7, 31, 32, 33, 4095, 4096, 4097, 32 * 4096 + 5, 262_144]


BEST = fused.simd()


@pytest.fixture(params=["avx512bf16", "avx2", "portable"])
def loop(request: pytest.FixtureRequest) -> Iterator[str]:
    got = fused.set_simd(request.param)
    if got != request.param:
        fused.set_simd(BEST)
        pytest.skip(f"this CPU has no {request.param} loop")
    yield got
    fused.set_simd(BEST)


@pytest.mark.parametrize("n", SIZES)
def test_one_pass_matches_float64_reference(loop: str, n: int) -> None:
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 3 + 1).astype(np.float32)
    x[rng.random(n) < 0.1] = 0
    if n > 3:
        x[3] = -0.0  # a negative zero is a zero
    total, square, lo, hi, zeros = fused.f32_partial(x)
    ref = x.astype(np.float64)
    assert total == pytest.approx(ref.sum(), rel=1e-5, abs=1e-3)
    assert square == pytest.approx((ref * ref).sum(), rel=1e-5)
    assert (lo, hi) == (float(x.min()), float(x.max()))
    assert zeros == int(np.count_nonzero(x == 0))


def test_loops_agree_and_an_empty_buffer_is_neutral() -> None:
    x = np.random.default_rng(1).standard_normal(100_003).astype(np.float32)
    results = []
    for want in ("avx2", "portable"):
        fused.set_simd(want)
        results.append(fused.f32_partial(x))
    fused.set_simd(BEST)
    (s1, q1, lo1, hi1, z1), (s2, q2, lo2, hi2, z2) = results
    assert s1 == pytest.approx(s2, rel=1e-5, abs=1e-2) and q1 == pytest.approx(q2, rel=1e-5)
    assert (lo1, hi1, z1) == (lo2, hi2, z2)
    total, square, lo, hi, zeros = fused.f32_partial(np.empty(0, np.float32))
    assert (total, square, zeros) == (0.0, 0.0, 0) and lo == np.inf and hi == -np.inf


def test_unaligned_and_little_endian_buffers_are_read() -> None:
    raw = bytearray(4 * 1000 + 1)
    x = np.frombuffer(raw, dtype="<f4", offset=1, count=1000)
    assert not x.flags.aligned
    x[:] = np.arange(1000, dtype=np.float32)
    assert fused.f32_partial(x)[0] == pytest.approx(499_500.0)


@pytest.mark.parametrize("kind", ["float64", "int32", "strided", "bytes", "big-endian"])
def test_anything_but_contiguous_native_float32_is_refused(kind: str) -> None:
    bad: object = {
        "float64": np.zeros(8, np.float64),
        "int32": np.zeros(8, np.int32),
        "strided": np.zeros((4, 4), np.float32)[:, 1],
        "bytes": b"abcd",
        "big-endian": np.zeros(8, dtype=">f4"),
    }[kind]
    with pytest.raises((TypeError, BufferError, ValueError)):
        fused.f32_partial(bad)


@pytest.mark.parametrize(
    "values",
    [
        [1.0, np.nan, 2.0],  # NaN: the numpy path counts it
        [1.0, np.inf, -np.inf],  # Infs
        [3e38, 3e38, -1.0],  # a float32 overflow of finite values: redone in float64
        [1e20, 1e20 + 1e13, 1e20 - 1e13],  # the squares overflow float32
        [1e6 + 0.25, 1e6 + 0.5, 1e6 + 0.75],  # a large mean against a small spread: centred
    ],
)
def test_hard_chunks_give_the_numpy_answer(values: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.array(values * 1000, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        fast = chunk_partial(x)
        monkeypatch.setattr(stats_kernel, "FUSED", False)
        slow = chunk_partial(x)
    assert (fast.n, fast.nan, fast.inf, fast.zeros) == (slow.n, slow.nan, slow.inf, slow.zeros)
    assert fast.mean == pytest.approx(slow.mean, rel=1e-6)
    assert fast.m2 == pytest.approx(slow.m2, rel=1e-4)
    assert (fast.lo, fast.hi) == (slow.lo, slow.hi)


def test_the_fused_and_numpy_paths_agree_on_ordinary_data(monkeypatch: pytest.MonkeyPatch) -> None:
    x = (np.random.default_rng(7).standard_normal(262_144) * 0.02).astype(np.float32)
    x[::17] = 0
    fast = chunk_partial(x)
    monkeypatch.setattr(stats_kernel, "FUSED", False)
    slow = chunk_partial(x)
    assert fast.n == slow.n and fast.zeros == slow.zeros and (fast.lo, fast.hi) == (slow.lo, slow.hi)
    assert fast.mean == pytest.approx(slow.mean, rel=1e-4, abs=1e-9)
    assert fast.m2 == pytest.approx(slow.m2, rel=1e-5)


@pytest.mark.parametrize("dtype", ["BF16", "F16"])
@pytest.mark.parametrize("n", [1, 33, 4097, 262_144])
def test_half_precision_chunks_are_widened_in_registers(loop: str, dtype: str, n: int) -> None:
    """BF16 (uint16 bits) and F16 chunks give what widening to float32 first gives."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 2).astype(np.float32)
    x[rng.random(n) < 0.05] = 0
    if dtype == "BF16":
        raw = (x.view(np.uint32) >> 16).astype(np.uint16)
        wide = (raw.astype(np.uint32) << 16).view(np.float32)
    else:
        raw = x.astype(np.float16)
        wide = raw.astype(np.float32)
    if dtype == "F16" and loop == "portable":
        with pytest.raises(NotImplementedError):
            fused.f16_partial(raw)
    got = stats_kernel.reduce_chunks([raw], dtype)
    ref = chunk_partial(wide.copy())
    assert (got.n, got.zeros, got.lo, got.hi) == (ref.n, ref.zeros, ref.lo, ref.hi)
    assert got.mean == pytest.approx(ref.mean, rel=1e-4, abs=1e-6)
    assert got.m2 == pytest.approx(ref.m2, rel=1e-4)


def test_half_precision_nan_and_inf_still_counted() -> None:
    raw = np.array([1.0, np.nan, np.inf, 0.0] * 20, dtype=np.float16)
    got = stats_kernel.reduce_chunks([raw], "F16")
    assert (got.nan, got.inf, got.zeros, got.n) == (20, 20, 20, 40)
    bits = (np.array([1.0, np.nan, -np.inf, 0.0] * 20, dtype=np.float32).view(np.uint32) >> 16).astype(
        np.uint16
    )
    got = stats_kernel.reduce_chunks([bits], "BF16")
    assert (got.nan, got.inf, got.zeros, got.n) == (20, 20, 20, 40)


def _bf16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded down to BF16 bits (uint16)."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


@pytest.mark.parametrize(
    "values",
    [
        [-1.0, -2.0, -0.5],  # all negative: the max is the smallest magnitude
        [1.0, 2.0, 0.5],  # all positive: the min is the smallest magnitude
        [-3.0, 2.0, 0.25, -0.125],  # both signs
        [0.0, -0.0, 0.0],  # only zeros, of both signs
        [-0.0, 5.0, 7.0],  # a negative zero is the minimum
        [-1e38, 1e38, 3.0],  # the extremes of the range
    ],
)
@pytest.mark.parametrize("repeat", [1, 40, 1000])  # the scalar tail, one register, many blocks
def test_bf16_min_max_and_zeros_from_bit_patterns(loop: str, values: list[float], repeat: int) -> None:
    """The AVX-512 loop orders raw 16-bit patterns as integers; every loop must give the float order."""
    bits = _bf16(np.array(values * repeat, np.float32))
    wide = (bits.astype(np.uint32) << 16).view(np.float32)
    total, square, lo, hi, zeros = fused.bf16_partial(bits)
    assert (lo, hi) == (float(wide.min()), float(wide.max()))
    assert zeros == int(np.count_nonzero(wide == 0))
    ref = wide.astype(np.float64)
    if np.abs(ref).max() < 1e18:  # the extremes overflow float32 squares: those chunks go to numpy
        assert total == pytest.approx(ref.sum(), rel=1e-5, abs=1e-6)
        assert square == pytest.approx((ref * ref).sum(), rel=1e-5)


def test_bf16_subnormal_only_chunks_are_summed_by_numpy() -> None:
    """AVX-512 BF16 dot products read subnormals as zero; a chunk of nothing larger still gets its mean."""
    tiny = np.full(4096, 1e-39, np.float32)  # a float32 (and BF16) subnormal
    got = stats_kernel.reduce_chunks([_bf16(tiny)], "BF16")
    wide = (_bf16(tiny).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    assert got.n == 4096 and got.zeros == 0
    assert got.mean == pytest.approx(wide.mean(), rel=1e-6) and got.mean > 0


def test_set_simd_refuses_an_unknown_loop() -> None:
    with pytest.raises(ValueError, match="unknown loop"):
        fused.set_simd("sse9")
    assert fused.simd() == BEST


def _numpy_path(raw: np.ndarray, dtype: str) -> stats_kernel.Partial:
    saved = stats_kernel.FUSED
    stats_kernel.FUSED = False
    try:
        return stats_kernel.reduce_chunks([raw], dtype)
    finally:
        stats_kernel.FUSED = saved


_SPECIAL16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x7F80, 0xFF80, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80, 0x7C00, 0xFC00]
_SPECIAL32 = [0, 0x80000000, 1, 0x80000001, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000]


@settings(max_examples=300, deadline=None)
@given(
    dtype=st.sampled_from(["BF16", "F16", "F32"]),
    values=st.lists(st.floats(-60000, 60000, width=32), max_size=20),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 400),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    bits=st.lists(st.integers(0, 0xFFFFFFFF), max_size=8),
    special=st.lists(st.integers(0, len(_SPECIAL32) - 1), max_size=8),
    level=st.sampled_from(["avx512bf16", "avx2", "portable"]),
)
def test_every_loop_agrees_with_numpy_on_any_bit_pattern(
    dtype: str,
    values: list[float],
    seed: int,
    n: int,
    scale: float,
    bits: list[int],
    special: list[int],
    level: str,
) -> None:
    """Property: for ordinary values mixed with any bit patterns (NaN, Inf, subnormals, both zeros, the
    largest finite values), each C loop the CPU has gives the numpy path's counts, extremes and moments:
    hard chunks are handed back, the rest must agree."""
    rng = np.random.default_rng(seed)
    drawn = rng.standard_normal(n) * scale + rng.choice([0.0, scale * 3])  # some with a mean off zero
    ordinary = np.concatenate([np.array(values, np.float32), drawn.astype(np.float32)])
    if dtype == "F32":
        odd = np.array(bits + [_SPECIAL32[k] for k in special], dtype=np.uint32).view(np.float32)
        raw = np.concatenate([ordinary, odd])
    else:
        odd16 = np.array(
            [b & 0xFFFF for b in bits] + [_SPECIAL16[k % len(_SPECIAL16)] for k in special], np.uint16
        )
        base16 = (
            (ordinary.view(np.uint32) >> 16).astype(np.uint16)
            if dtype == "BF16"
            else ordinary.astype(np.float16).view(np.uint16)
        )
        raw = np.concatenate([base16, odd16])
        raw = raw if dtype == "BF16" else raw.view(np.float16)
    raw = rng.permutation(raw)
    fused.set_simd(level)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            got = stats_kernel.reduce_chunks([raw], dtype)
            ref = _numpy_path(raw, dtype)
    finally:
        fused.set_simd(BEST)
    assert (got.n, got.nan, got.inf, got.zeros) == (ref.n, ref.nan, ref.inf, ref.zeros)
    assert (got.lo, got.hi) == (ref.lo, ref.hi)
    # the mean is as exact as the data's scale allows: values of ±3e38 around a few ones may cancel in
    # either order of summation, so its error is measured against max(|mean|, std), not |mean|
    scale = max(abs(ref.mean), (ref.m2 / ref.n) ** 0.5 if ref.n else 0.0)
    assert abs(got.mean - ref.mean) <= 1e-5 * scale + 1e-30
    assert got.m2 == pytest.approx(ref.m2, rel=1e-4, abs=1e-30)
