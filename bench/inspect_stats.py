"""Benchmark: ``inspect`` header time vs ``torch.load``, and ``--stats`` throughput vs a raw mmap read.

Usage: ``.venv/bin/python bench/inspect_stats.py [--mb 512]``. Writes a safetensors file (and a torch ``.bin``
when torch is installed) of the given size in a temp folder, then prints, in one run:

* inspect (headers only) vs ``torch.load(weights_only=True, mmap=True)`` / ``safetensors.safe_open`` of the
  same file, as a ratio (goal: headers in under 50 ms, independent of the tensor bytes);
* ``--stats`` GB/s vs the raw memory-map read rate of the same file (a plain ``np.add.reduce`` over uint8
  views: the floor of touching every byte once), as a ratio (goal: at least 0.7×).
"""

from __future__ import annotations

import argparse
import mmap
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def raw_read(path: Path) -> None:
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, dtype=np.uint64, count=len(mm) // 8)
        for start in range(0, view.size, 1 << 20):
            np.bitwise_or.reduce(view[start : start + (1 << 20)])
        del view


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=512, help="checkpoint size in MiB")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_tensors = 64
    per = args.mb * (1 << 20) // 4 // n_tensors
    tensors = {f"layers.{i}.weight": rng.standard_normal(per, dtype=np.float32) for i in range(n_tensors)}
    with tempfile.TemporaryDirectory() as tmp:
        st = Path(tmp) / "model.safetensors"
        save_file(tensors, st)
        size = st.stat().st_size
        raw_read(st)  # warm the page cache once for both contenders

        t_inspect = best(lambda: inspect_path(st), 5)
        print(f"inspect safetensors ({size / 1e9:.2f} GB): {t_inspect * 1e3:.2f} ms")
        try:
            import torch

            bin_path = Path(tmp) / "pytorch_model.bin"
            torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, bin_path)
            t_bin = best(lambda: inspect_path(bin_path), 5)
            t_load = best(lambda: torch.load(bin_path, weights_only=True), 3)
            print(
                f"inspect torch .bin: {t_bin * 1e3:.2f} ms; torch.load: {t_load * 1e3:.1f} ms; "
                f"ratio inspect/torch.load = {t_bin / t_load:.4f} ({t_load / t_bin:.0f}x faster)"
            )
        except ImportError:
            print("torch not installed: torch .bin comparison skipped")

        info = inspect_path(st)
        t_raw = best(lambda: raw_read(st))
        t_stats = best(lambda: [tensor_stats(t) for t in info.tensors])
        print(
            f"raw mmap read: {size / t_raw / 1e9:.2f} GB/s; --stats: {size / t_stats / 1e9:.2f} GB/s; "
            f"ratio stats/raw = {t_raw / t_stats:.2f}x (goal >= 0.7x)"
        )


if __name__ == "__main__":
    main()
