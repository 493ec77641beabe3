"""Upload cost of trust on upload: a ``torch.save`` checkpoint of random tensors (default 1 GiB) uploaded
with the real ``huggingface_hub`` client to ``cairn serve`` with scanning on (the default) and with
``--no-scan`` (the baseline), in the same run, alternating, each upload into a fresh data directory (so
nothing is deduplicated). Prints each time, the best of each side and the ratio scan-on / scan-off; the
goal is under 1.05. Also prints the time of the scan alone on the same file (``inspect_file``).

On a shared machine upload times swing by tens of percent between rounds; the scan-alone time over the
upload time is the noise-free figure of what scanning adds.

Usage: ``.venv/bin/python bench/hub_upload_scan.py [--size-mib 1024] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import free_port, wait

BIN = Path(sys.executable).parent


def make_checkpoint(path: Path, size_mib: int) -> None:
    import torch

    n = size_mib * (1 << 20) // 4 // 64
    state = {f"layer{i}.weight": torch.randn(n) for i in range(64)}
    torch.save(state, path)


def one_upload(ckpt: Path, scan: bool) -> float:
    data = Path(tempfile.mkdtemp(prefix="cairn-bench-hub-"))
    port = free_port()
    try:
        token = subprocess.run(
            [str(BIN / "cairn"), "admin", "create-user", "bench", "--data", str(data)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        args = [str(BIN / "cairn"), "serve", "--port", str(port), "--data", str(data)]
        proc = subprocess.Popen([*args, *([] if scan else ["--no-scan"])], stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait(url + "/api/whoami-v2", proc)
            from huggingface_hub import HfApi

            api = HfApi(endpoint=url, token=token)
            api.create_repo("bench/ckpt")
            t0 = time.perf_counter()
            api.upload_file(path_or_fileobj=str(ckpt), path_in_repo="pytorch_model.bin", repo_id="bench/ckpt")
            return time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
    work = Path(tempfile.mkdtemp(prefix="cairn-bench-ckpt-"))
    try:
        ckpt = work / "pytorch_model.bin"
        make_checkpoint(ckpt, args.size_mib)
        size = ckpt.stat().st_size
        print(f"checkpoint: torch.save of 64 random float32 tensors, {size / (1 << 20):.0f} MiB")
        from cairn.registry.scanning import inspect_file

        t0 = time.perf_counter()
        found = inspect_file(ckpt, "0" * 64)
        scan_s = time.perf_counter() - t0
        print(f"scan alone: {scan_s:.3f} s (status {found.status})")
        times: dict[bool, list[float]] = {True: [], False: []}
        for r in range(args.rounds):
            for scan in (False, True) if r % 2 == 0 else (True, False):
                t = one_upload(ckpt, scan)
                times[scan].append(t)
                print(
                    f"round {r + 1} scan={'on ' if scan else 'off'} {t:.2f} s  {size / t / (1 << 20):.0f} MiB/s"
                )
        on, off = min(times[True]), min(times[False])
        print(f"best: scan on {on:.2f} s, scan off {off:.2f} s, ratio on/off {on / off:.3f} (goal < 1.05)")
        mon, moff = statistics.median(times[True]), statistics.median(times[False])
        print(f"median: scan on {mon:.2f} s, scan off {moff:.2f} s, ratio on/off {mon / moff:.3f}")
        print(
            f"scan alone / best upload without scan: {scan_s / off:.4f} (the cost scanning adds, noise-free)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
