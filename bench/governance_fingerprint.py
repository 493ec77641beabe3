"""Benchmark: lineage fingerprint of a safetensors file vs. the baseline of hashing the file once (sha256).

The fingerprint reads the file once, hashing each tensor and picking 64 sample values per tensor on the
way; the baseline is ``cairn.format.hashing.sha256_file``, which every upload already pays. Prints the
ratio fingerprint / baseline (1.0 = free on top of a read).

    .venv/bin/python bench/governance_fingerprint.py [MiB]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cairn.format.hashing import sha256_file
from cairn.format.safetensors import write_safetensors
from cairn.governance.fingerprint import fingerprint_file


def build(path: Path, mib: int) -> None:
    rng = np.random.default_rng(0)
    n_tensors = max(1, mib // 4)
    items = []
    for i in range(n_tensors):
        arr = rng.standard_normal((1024, 1024), dtype=np.float32)  # 4 MiB each
        items.append((f"layers.{i}.weight", "F32", (1024, 1024), memoryview(arr.tobytes())))
    with path.open("wb") as f:
        write_safetensors(f, items)


def best_of(fn: object, path: Path, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(path)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        build(path, mib)
        size = path.stat().st_size / (1 << 20)
        base = best_of(sha256_file, path)
        fp = best_of(fingerprint_file, path)
        print(
            f"file: {size:.0f} MiB, {len(fingerprint_file(path).tensors)} tensors (warm page cache, best of 3)"
        )
        print(f"baseline sha256_file : {base:.3f} s  ({size / base:.0f} MiB/s)")
        print(f"fingerprint_file     : {fp:.3f} s  ({size / fp:.0f} MiB/s)")
        print(f"ratio fingerprint / sha256 baseline: {fp / base:.2f}x")


if __name__ == "__main__":
    main()
