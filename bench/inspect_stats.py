"""Benchmark: ``inspect`` header time vs ``torch.load``, and ``--stats`` throughput vs a raw mmap read.

Usage: ``.venv/bin/python bench/inspect_stats.py [--mb 256 2048] [--repeat 5] [--threads 1 2]
[--chunks 65536 262144] [--no-cold] [--simd avx2]``. For each size it writes, in a temp folder, a sharded safetensors
checkpoint (4 shards + index) and a torch ``.bin`` of the same tensors, then prints, in the same run:

* ``inspect`` of the sharded safetensors folder and of the ``.bin`` (headers / opcode walk only) vs
  ``torch.load(weights_only=True)`` of the same ``.bin`` — the baseline — as a ratio. Goal: under 50 ms
  and independent of the tensor bytes (compare the sizes).
* ``--stats`` throughput in GB/s vs the raw memory-map read rate of the same shards, as a ratio.
  Goal: at least 0.7x. The baseline maps each shard afresh (so it pays the same page faults as
  ``--stats``) and OR-reduces every 8-byte word in 8 MiB pieces: the floor of touching each byte once.
  It is measured with one thread (the goal's baseline) and with two threads (each taking half of every
  shard); both ratios are printed. Warm: the page cache holds the shards (read once before timing).
  Cold: before every timed run the shards are dropped from the page cache with
  ``posix_fadvise(DONTNEED)``, so both contenders read from the disk.
* the same ``--stats`` figure for a BF16 copy of the checkpoint (GB/s of file bytes; BF16 is widened
  to float32 chunk by chunk).

Every figure is the median of ``--repeat`` runs; the load average is printed before each block, as
other processes on the machine change the figures.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from cairn.format import stats_kernel
from cairn.format.reader import inspect_path
from cairn.format.stats import stats_all

N_TENSORS = 64
N_SHARDS = 4
PIECE = 1 << 20  # 8-byte words per OR-reduction in the raw read (8 MiB)


def median(fn: Callable[[], object], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def drop_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _or_reduce(view: np.ndarray, start: int, stop: int) -> None:
    for at in range(start, stop, PIECE):
        np.bitwise_or.reduce(view[at : min(at + PIECE, stop)])


def raw_read(paths: list[Path], threads: int = 1) -> None:
    """Map each file afresh and OR-reduce every 8-byte word (``threads`` threads split each file)."""
    for path in paths:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = np.frombuffer(mm, dtype=np.uint64, count=len(mm) // 8)
            bounds = [view.size * i // threads for i in range(threads + 1)]
            workers = [
                threading.Thread(target=_or_reduce, args=(view, bounds[i], bounds[i + 1]))
                for i in range(threads)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            del view


def write(folder: Path, mb: int, dtype: str = "float32") -> dict[str, np.ndarray]:
    """Sharded safetensors of ``mb`` MiB; ``bfloat16`` is written as its uint16 bits with dtype BF16."""
    rng = np.random.default_rng(0)
    itemsize = 4 if dtype == "float32" else 2
    per = mb * (1 << 20) // itemsize // N_TENSORS
    tensors = {f"layers.{i}.weight": rng.standard_normal(per, dtype=np.float32) for i in range(N_TENSORS)}
    names = list(tensors)
    weight_map = {}
    for s in range(N_SHARDS):
        shard = f"model-{s + 1:05d}-of-{N_SHARDS:05d}.safetensors"
        part = names[s::N_SHARDS]
        if dtype == "float32":
            save_file({n: tensors[n] for n in part}, folder / shard)
        else:
            _save_bf16({n: tensors[n] for n in part}, folder / shard)
        weight_map |= dict.fromkeys(part, shard)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return tensors


def _save_bf16(tensors: dict[str, np.ndarray], path: Path) -> None:
    header: dict[str, object] = {}
    at = 0
    blobs = []
    for name, t in tensors.items():
        bits = (t.view(np.uint32) >> 16).astype(np.uint16)
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [at, at + bits.nbytes]}
        at += bits.nbytes
        blobs.append(bits)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    with path.open("wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        for b in blobs:
            f.write(b.tobytes())


def stats_vs_raw(folder: Path, label: str, args: argparse.Namespace) -> None:
    shards = sorted(folder.glob("*.safetensors"))
    size = sum(p.stat().st_size for p in shards)
    info = inspect_path(folder)
    modes = [("warm", None)] + ([] if args.no_cold else [("cold", lambda: drop_cache(shards))])
    for mode, before in modes:
        raw_read(shards)  # warms the page cache (a cold run drops it again before each timing)
        print(f"-- {label}, {size / 1e9:.2f} GB, {mode} page cache; {load()}")
        raws = {t: median(lambda: raw_read(shards, t), args.repeat, before) for t in (1, 2)}  # noqa: B023
        for t, secs in raws.items():
            print(f"baseline raw mmap read, {t} thread(s): {size / secs / 1e9:.2f} GB/s")
        for chunk in args.chunks:
            stats_kernel.CHUNK = chunk
            for threads in args.threads:
                secs = median(lambda: list(stats_all(info.tensors, threads=threads)), args.repeat, before)  # noqa: B023
                print(
                    f"--stats, {threads} thread(s), chunk {chunk} elements: {size / secs / 1e9:.2f} GB/s; "
                    f"ratio stats/raw = {raws[1] / secs:.2f}x vs the 1-thread read, "
                    f"{raws[2] / secs:.2f}x vs the 2-thread read (goal >= 0.7x)"
                )


def run(mb: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "st"
        folder.mkdir()
        tensors = write(folder, mb)
        shards = sorted(folder.glob("*.safetensors"))
        size = sum(p.stat().st_size for p in shards)
        print(f"== {size / 1e9:.2f} GB, {N_TENSORS} tensors; {load()}")
        t_st = median(lambda: inspect_path(folder), 5)
        print(f"inspect sharded safetensors folder: {t_st * 1e3:.2f} ms")
        try:
            import torch
        except ImportError:
            print("torch not installed: torch .bin comparison skipped")
        else:
            bin_path = Path(tmp) / "pytorch_model.bin"
            torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, bin_path)
            t_bin = median(lambda: inspect_path(bin_path), 5)
            t_load = median(lambda: torch.load(bin_path, weights_only=True), 3)
            print(
                f"inspect torch .bin: {t_bin * 1e3:.2f} ms; baseline torch.load(weights_only=True): "
                f"{t_load * 1e3:.0f} ms; ratio inspect/torch.load = {t_bin / t_load:.4f} "
                f"({t_load / t_bin:.0f}x faster); sharded safetensors inspect/torch.load = {t_st / t_load:.4f}"
            )
            bin_path.unlink()
        del tensors
        stats_vs_raw(folder, "F32", args)
        if args.bf16:
            for p in folder.iterdir():
                p.unlink()
            write(folder, mb, "bfloat16")
            stats_vs_raw(folder, "BF16", args)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, nargs="+", default=[256, 2048], help="checkpoint sizes in MiB")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="--stats worker threads")
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[stats_kernel.CHUNK], help="--stats chunk sizes (elements)"
    )
    parser.add_argument("--no-cold", action="store_true", help="skip the cold page-cache figures")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="skip the BF16 checkpoint")
    parser.add_argument("--tmp", default=None, help="folder for the temporary checkpoint (default: system)")
    parser.add_argument(
        "--simd",
        choices=["avx512bf16", "avx2", "portable"],
        default=None,
        help="use at most these C loops, to measure what a CPU without the best ones gets (default: best)",
    )
    args = parser.parse_args()
    if args.simd is not None:
        if not stats_kernel.FUSED:
            parser.error("--simd needs the C kernel (built by setup.py)")
        print(f"C loops: {stats_kernel._fused.set_simd(args.simd)}")
    for mb in args.mb:
        run(mb, args)


if __name__ == "__main__":
    main()
