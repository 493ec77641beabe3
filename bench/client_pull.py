"""Pull throughput: ``cairn pull`` vs ``huggingface_hub.snapshot_download`` against the same local hub.

Starts ``cairn serve`` (SQLite + local blobs) on loopback, pushes one repository with ``cairn push``
(one file of ``--size-mib`` MiB plus eight of a sixteenth of that, and a few small JSON files), then
downloads it into a fresh cache with each client in alternating rounds, best of ``--runs``. Both verify
nothing beyond their defaults: huggingface_hub checks sizes, cairn checks every file's sha256 / git SHA-1.
Prints MiB/s and the client process's CPU seconds for each, and the ratios cairn / huggingface_hub
(CPU time is the steadier figure on a loaded machine: the hub and the client share its cores).

Usage: ``.venv/bin/python bench/client_pull.py [--size-mib 256] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import free_port, wait

os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
os.environ.pop("HF_HUB_ENABLE_HF_TRANSFER", None)

BIN = Path(sys.executable).parent
PUSH = [str(BIN / "cairn"), "push", "--json"]


def make_repo(root: Path, size_mib: int) -> int:
    root.mkdir()
    rng = os.urandom
    (root / "model.safetensors").write_bytes(rng(size_mib << 20))
    for i in range(8):
        (root / f"shard-{i}.bin").write_bytes(rng((size_mib << 20) // 16))
    for i in range(4):
        (root / f"config-{i}.json").write_text(json.dumps({"i": i, "pad": "x" * 2000}))
    return sum(p.stat().st_size for p in root.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from huggingface_hub import snapshot_download

    from cairn.client import parse_repo_ref, pull

    with tempfile.TemporaryDirectory(prefix="cairn-bench-client-") as tmp_s:
        tmp = Path(tmp_s)
        data = tmp / "data"
        token = json.loads(
            subprocess.check_output(
                [str(BIN / "cairn"), "admin", "create-user", "bench", "--data", str(data), "--json"]
            )
        )["token"]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        hub = subprocess.Popen(
            [str(BIN / "cairn"), "serve", "--port", str(port), "--data", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait(url + "/api/models", hub)
            total = make_repo(tmp / "src", args.size_mib)
            subprocess.check_call(
                [*PUSH, str(tmp / "src"), "bench/model", "--create", "--endpoint", url, "--token", token],
                stdout=subprocess.DEVNULL,
            )
            ref = parse_repo_ref("bench/model")
            best = {"cairn pull": float("inf"), "snapshot_download": float("inf")}
            cpu = dict.fromkeys(best, float("inf"))
            for run in range(args.runs):
                order = list(best) if run % 2 == 0 else list(reversed(best))
                for name in order:
                    cache = tmp / f"cache-{name.replace(' ', '-')}-{run}"
                    start, cpu0 = time.perf_counter(), time.process_time()
                    if name == "cairn pull":
                        pull(ref, endpoint=url, token=token, cache_dir=cache)
                    else:
                        snapshot_download("bench/model", cache_dir=cache, endpoint=url, token=token)
                    best[name] = min(best[name], time.perf_counter() - start)
                    cpu[name] = min(cpu[name], time.process_time() - cpu0)
                    shutil.rmtree(cache)
        finally:
            hub.terminate()
            hub.wait(10)
    mib = total / (1 << 20)
    print(f"repository: {mib:.0f} MiB in 13 files, best of {args.runs} runs, fresh cache each run")
    for name, seconds in best.items():
        print(f"  {name:18s} {seconds:7.2f} s  {mib / seconds:8.1f} MiB/s   client CPU {cpu[name]:.2f} s")
    print(
        f"  throughput ratio cairn / huggingface_hub: {best['snapshot_download'] / best['cairn pull']:.2f}x"
    )
    print(f"  client CPU ratio cairn / huggingface_hub: {cpu['cairn pull'] / cpu['snapshot_download']:.2f}x")


if __name__ == "__main__":
    main()
