"""Benchmark: ``inspect`` header time vs ``torch.load``, and ``--stats`` throughput vs a raw mmap read.

Usage: ``.venv/bin/python bench/inspect_stats.py [--mb 256 2048]``. For each size it writes, in a temp
folder, a sharded safetensors checkpoint (4 shards + index) and a torch ``.bin`` of the same tensors, then
prints, in the same run:

* ``inspect`` of the sharded safetensors folder and of the ``.bin`` (headers / opcode walk only) vs
  ``torch.load(weights_only=True)`` of the same ``.bin`` — the baseline — as a ratio. Goal: under 50 ms
  and independent of the tensor bytes (compare the sizes).
* ``--stats`` throughput in GB/s vs the raw memory-map read rate of the same shards (one OR-reduction
  over every 8-byte word: the floor of touching each byte once), as a ratio. Goal: at least 0.7×.
"""

from __future__ import annotations

import argparse
import json
import mmap
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from cairn.format.reader import inspect_path
from cairn.format.stats import tensor_stats

N_TENSORS = 64
N_SHARDS = 4


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def raw_read(paths: list[Path]) -> None:
    for path in paths:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = np.frombuffer(mm, dtype=np.uint64, count=len(mm) // 8)
            for start in range(0, view.size, 1 << 20):
                np.bitwise_or.reduce(view[start : start + (1 << 20)])
            del view


def write(folder: Path, mb: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    per = mb * (1 << 20) // 4 // N_TENSORS
    tensors = {f"layers.{i}.weight": rng.standard_normal(per, dtype=np.float32) for i in range(N_TENSORS)}
    names = list(tensors)
    weight_map = {}
    for s in range(N_SHARDS):
        shard = f"model-{s + 1:05d}-of-{N_SHARDS:05d}.safetensors"
        part = names[s::N_SHARDS]
        save_file({n: tensors[n] for n in part}, folder / shard)
        weight_map |= dict.fromkeys(part, shard)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return tensors


def run(mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "st"
        folder.mkdir()
        tensors = write(folder, mb)
        shards = sorted(folder.glob("*.safetensors"))
        size = sum(p.stat().st_size for p in shards)
        print(f"== {size / 1e9:.2f} GB, {N_TENSORS} tensors")
        t_st = best(lambda: inspect_path(folder), 5)
        print(f"inspect sharded safetensors folder: {t_st * 1e3:.2f} ms")
        try:
            import torch
        except ImportError:
            print("torch not installed: torch .bin comparison skipped")
        else:
            bin_path = Path(tmp) / "pytorch_model.bin"
            torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, bin_path)
            del tensors
            t_bin = best(lambda: inspect_path(bin_path), 5)
            t_load = best(lambda: torch.load(bin_path, weights_only=True), 2)
            print(
                f"inspect torch .bin: {t_bin * 1e3:.2f} ms; baseline torch.load(weights_only=True): "
                f"{t_load * 1e3:.0f} ms; ratio inspect/torch.load = {t_bin / t_load:.4f} "
                f"({t_load / t_bin:.0f}x faster); sharded safetensors inspect/torch.load = {t_st / t_load:.4f}"
            )
            bin_path.unlink()
        info = inspect_path(folder)
        raw_read(shards)  # warm the page cache for both contenders
        t_raw = best(lambda: raw_read(shards))
        print(f"baseline raw mmap read: {size / t_raw / 1e9:.2f} GB/s")
        for threads in (1, 2):
            t_stats = best(lambda: [tensor_stats(t, threads=threads) for t in info.tensors])  # noqa: B023
            print(
                f"--stats with {threads} thread(s): {size / t_stats / 1e9:.2f} GB/s; "
                f"ratio stats/raw = {t_raw / t_stats:.2f}x (goal >= 0.7x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, nargs="+", default=[256, 2048], help="checkpoint sizes in MiB")
    for mb in parser.parse_args().mb:
        run(mb)


if __name__ == "__main__":
    main()
