"""Streaming statistics and tensor diffs, checked against numpy on the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from cairn.format import arrays, stats_kernel
from cairn.format.diff import diff_inspections
from cairn.format.inspection import TensorRecord
from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats


@pytest.mark.parametrize("mean", [0.0, 1000.0])  # 1000: the cancellation-safe path is needed
def test_stats_match_numpy_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mean: float
) -> None:
    monkeypatch.setattr(stats_kernel, "CHUNK", 1000)  # force many chunks on a small tensor
    x = (np.random.default_rng(1).standard_normal(10_007) * 3 + mean).astype(np.float32)
    x[::10] = 0
    x[5], x[7], x[11] = np.nan, np.inf, -np.inf
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec, threads=3)
    assert st is not None
    assert tensor_stats(rec, threads=1) == st  # chunks are merged in order whatever the thread count
    finite = x[np.isfinite(x)].astype(np.float64)
    assert st.mean == pytest.approx(finite.mean(), rel=1e-6, abs=1e-6)
    assert st.std == pytest.approx(finite.std(), rel=1e-4)
    assert (st.min, st.max) == (finite.min(), finite.max())
    assert st.absmax == np.abs(finite).max()
    assert (st.nan, st.inf, st.flagged) == (1, 2, True)
    assert st.zeros == pytest.approx(np.count_nonzero(x == 0) / x.size)


def test_stats_of_bf16_widen_exactly(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    t = torch.tensor([1.5, -2.0, 0.0, 3.0], dtype=torch.bfloat16)
    save_torch({"t": t}, str(tmp_path / "b.safetensors"))
    (rec,) = inspect_path(tmp_path / "b.safetensors").tensors
    st = tensor_stats(rec)
    assert st is not None and rec.dtype == "BF16"
    assert (st.min, st.max, st.mean, st.zeros, st.flagged) == (-2.0, 3.0, 0.625, 0.25, False)


def test_stats_of_integers_and_empty_and_all_nan(tmp_path: Path) -> None:
    save_file(
        {
            "i": np.array([1, 2, 3, 4], np.int64),
            "e": np.zeros((0,), np.float32),
            "n": np.full(3, np.nan, np.float32),
        },
        tmp_path / "x.safetensors",
    )
    got = {r.name: tensor_stats(r) for r in inspect_path(tmp_path / "x.safetensors").tensors}
    assert (
        got["i"] is not None and got["i"].mean == 2.5 and got["i"].std == pytest.approx(np.std([1, 2, 3, 4]))
    )
    assert got["e"] is not None and got["e"].count == 0 and got["e"].mean is None
    assert got["n"] is not None and got["n"].nan == 3 and got["n"].mean is None and got["n"].flagged


def test_strided_records_read_like_their_view(tmp_path: Path) -> None:
    base = np.arange(24, dtype=np.float32)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"\0" * 16 + base.tobytes())
    rec = TensorRecord("t", "F32", (4, 3), 48, str(path), 16, strides=(1, 4), storage_offset=2)
    expected = np.lib.stride_tricks.as_strided(base[2:], shape=(4, 3), strides=(4, 16))
    np.testing.assert_array_equal(arrays.to_array(rec), expected)
    assert not rec.contiguous


def test_record_past_end_of_file_is_a_format_error(tmp_path: Path) -> None:
    from cairn.errors import FormatError

    path = tmp_path / "raw.bin"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(FormatError, match="needs bytes up to"):
        arrays.to_array(TensorRecord("t", "F32", (8,), 32, str(path), 0))


def test_diff_buckets_and_numbers(tmp_path: Path) -> None:
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    save_file({"same": w, "changed": w, "reshaped": w, "gone": w}, tmp_path / "a.safetensors")
    w2 = w.copy()
    w2[0, 0] += 2
    save_file({"same": w, "changed": w2, "reshaped": w.reshape(4, 3), "new": w}, tmp_path / "b.safetensors")
    result = diff_inspections(
        inspect_path(tmp_path / "a.safetensors"), inspect_path(tmp_path / "b.safetensors")
    )
    assert not result.identical
    assert result.added == ("new",) and result.removed == ("gone",)
    kinds = {c.name: c for c in result.changes}
    assert kinds["same"].kind == "identical"
    assert kinds["reshaped"].kind == "shape_or_dtype"
    changed = kinds["changed"]
    assert changed.kind == "changed" and changed.max_abs == 2.0
    assert changed.rel_l2 == pytest.approx(2.0 / float(np.linalg.norm(w.astype(np.float64))))
    assert result.summary() == "1 identical, 1 changed, 1 changed in shape or dtype, 1 added, 1 removed"


def test_diff_across_formats_and_layouts(tmp_path: Path) -> None:
    w = np.arange(12, dtype=np.float64).reshape(3, 4)
    np.savez(tmp_path / "a.npz", w=np.asfortranarray(w))
    save_file({"w": w}, tmp_path / "b.safetensors")
    result = diff_inspections(inspect_path(tmp_path / "a.npz"), inspect_path(tmp_path / "b.safetensors"))
    assert result.identical, result.to_dict()


def test_stats_with_the_default_chunks_over_several_tasks(tmp_path: Path) -> None:
    from cairn.format import stats

    n = stats_kernel.CHUNK * stats.TASK_CHUNKS + stats_kernel.CHUNK + 3  # two tasks, a short last chunk
    x = np.random.default_rng(2).standard_normal(n).astype(np.float32)
    x[n - 1] = np.nan
    save_file({"x": x}, tmp_path / "x.safetensors")
    (rec,) = inspect_path(tmp_path / "x.safetensors").tensors
    st = tensor_stats(rec, threads=2)
    assert st is not None and st == tensor_stats(rec, threads=1)
    finite = x[:-1].astype(np.float64)
    assert (st.nan, st.min, st.max) == (1, finite.min(), finite.max())
    assert st.mean == pytest.approx(finite.mean(), abs=1e-6)
    assert st.std == pytest.approx(finite.std(), rel=1e-6)
