"""Benchmark: signing and verifying a multi-GB model directory is hash-bound.

Generates a model directory under /tmp (several files, one large), then measures in the same run:

- baseline ``sha256 per file``: plain ``hashlib.file_digest`` of each file, files in a thread pool — what
  ``sha256sum`` run in parallel would do;
- baseline ``sha256 per shard``: the same bytes cut into ``--shard-size`` ranges hashed in a thread pool —
  the parallel hashing limit of this machine;
- ``cairn sign`` / ``cairn verify`` with ``method=files`` and with ``method=shards``.

Each is the best of ``--repeat`` rounds (candidates shuffled in each round) with the files in the page cache (read once before timing), so
that the numbers compare hashing, not the disk. Prints GB/s and the ratio to the matching baseline, then
deletes the data.

On a shared machine the wall-clock ratios move with other processes' load; the CPU-time columns
(seconds of CPU this process spent, all threads) show whether cairn does more work than plain hashing.

    .venv/bin/python bench/sign_verify.py [--gib 2] [--repeat 3] [--shard-size 268435456]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cairn.security.signing import sign, verify, write_keypair
from cairn.security.signing.hashing import default_workers


def make_model(root: Path, total: int) -> list[Path]:
    """One file of half the bytes, the rest in three smaller ones, plus a config."""
    sizes = [total // 2, total // 4, total // 8, total - total // 2 - total // 4 - total // 8]
    block = os.urandom(64 << 20)
    paths = []
    for i, size in enumerate(sizes):
        path = root / f"model-{i:05d}-of-{len(sizes):05d}.safetensors"
        with path.open("wb") as f:
            left, n = size, 0
            while left:
                chunk = block[: min(left, len(block))]
                f.write(n.to_bytes(8, "little") + chunk[8:])  # every block differs
                left -= len(chunk)
                n += 1
        paths.append(path)
    (root / "config.json").write_text('{"architectures": ["Bench"]}')
    return paths


def sha256_files(paths: list[Path], workers: int) -> None:
    def one(p: Path) -> str:
        with p.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))


def sha256_shards(paths: list[Path], workers: int, shard: int) -> None:
    def one(task: tuple[Path, int, int]) -> str:
        p, start, end = task
        h = hashlib.sha256()
        buf = memoryview(bytearray(4 << 20))
        with p.open("rb", buffering=0) as f:
            f.seek(start)
            left = end - start
            while left:
                n = f.readinto(buf[: min(len(buf), left)])
                h.update(buf[:n])
                left -= n
        return h.hexdigest()

    tasks = []
    for p in paths:
        size = p.stat().st_size
        tasks += [(p, s, min(s + shard, size)) for s in range(0, size, shard)]
    tasks.sort(key=lambda t: t[2] - t[1], reverse=True)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, tasks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0, help="size of the model directory (GiB)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shard-size", type=int, default=256 << 20)
    ap.add_argument("--workers", type=int, default=default_workers())
    args = ap.parse_args()
    total = int(args.gib * (1 << 30))
    root = Path(tempfile.mkdtemp(prefix="cairn-bench-sign-", dir="/tmp"))
    try:
        model = root / "model"
        model.mkdir()
        paths = make_model(model, total)
        priv, pub = write_keypair(root / "key")
        sha256_files(paths, args.workers)  # warm the page cache
        gb = total / 1e9
        w, shard = args.workers, args.shard_size
        sig, shards_sig = root / "files.sig", root / "shards.sig"
        sign(model, key=priv, signature=sig, workers=w)  # so that verify may come first in a round
        sign(model, key=priv, method="shards", shard_size=shard, signature=shards_sig, workers=w)
        mib = shard >> 20
        candidates: list[tuple[str, Callable[[], object], str]] = [
            ("baseline sha256 per file", lambda: sha256_files(paths, w), "files"),
            ("baseline sha256 per shard", lambda: sha256_shards(paths, w, shard), "shards"),
            ("cairn sign   (files)", lambda: sign(model, key=priv, signature=sig, workers=w), "files"),
            ("cairn verify (files)", lambda: verify(model, key=pub, signature=sig, workers=w), "files"),
            (
                f"cairn sign   (shards {mib} MiB)",
                lambda: sign(
                    model, key=priv, method="shards", shard_size=shard, signature=shards_sig, workers=w
                ),
                "shards",
            ),
            (
                f"cairn verify (shards {mib} MiB)",
                lambda: verify(model, key=pub, signature=shards_sig, workers=w),
                "shards",
            ),
        ]
        # rounds in shuffled order, so that load from other processes hits every candidate alike; keep
        # each one's best wall time and best CPU time (all threads of this process: the cost of the work
        # itself, which other processes on a shared machine disturb much less than the wall clock)
        wall = {name: float("inf") for name, _fn, _kind in candidates}
        cpu = dict(wall)
        rng = random.Random(0)
        for _ in range(args.repeat):
            for name, fn, _kind in rng.sample(candidates, len(candidates)):
                t, c = time.perf_counter(), time.process_time()
                fn()
                wall[name] = min(wall[name], time.perf_counter() - t)
                cpu[name] = min(cpu[name], time.process_time() - c)
        base_of = {"files": candidates[0][0], "shards": candidates[1][0]}
        print(
            f"{gb:.2f} GB in {len(paths) + 1} files, {w} hashing threads, best of {args.repeat}, warm cache"
        )
        # the parallel hashing limit: every thread hashing flat out at plain sha256's speed per CPU-second
        limit = w * gb / min(cpu[base_of["files"]], cpu[base_of["shards"]])
        print(f"parallel hashing limit: {w} threads × {limit / w:.2f} GB per CPU-second = {limit:.2f} GB/s")
        print(
            f"{'':34} {'wall s':>7} {'GB/s':>6} {'× base':>7} {'× limit':>8}"
            f"   {'CPU s':>6} {'GB/CPU-s':>8} {'× base':>7}"
        )
        for name, _fn, kind in candidates:
            bw, bc = wall[base_of[kind]], cpu[base_of[kind]]
            print(
                f"{name:34} {wall[name]:7.3f} {gb / wall[name]:6.2f} {bw / wall[name]:6.2f}×"
                f" {gb / wall[name] / limit:7.2f}×"
                f"   {cpu[name]:6.3f} {gb / cpu[name]:8.2f} {bc / cpu[name]:6.2f}×"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
