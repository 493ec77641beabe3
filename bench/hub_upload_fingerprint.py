"""Upload cost of lineage fingerprints: a checkpoint (safetensors and a ``torch.save`` zip, default
512 MiB each) uploaded with the real ``huggingface_hub`` client to an in-process cairn hub with
fingerprinting on (the default: safetensors fingerprinted in the upload's own pass over the bytes,
torch zips read once more after staging) and off (the baseline: the streaming fingerprint,
``LineageService.on_ingest`` and ``ensure`` replaced by no-ops in this process), alternating, each upload into a fresh database and blob directory (nothing is
deduplicated). Scanning is on in both. Prints each time, medians and the ratio on/off, and the time of
fingerprinting alone over the best upload without it (the noise-free figure of what it adds).

Usage: ``.venv/bin/python bench/hub_upload_fingerprint.py [--size-mib 512] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_checkpoints(work: Path, size_mib: int) -> dict[str, Path]:
    import torch
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    n = size_mib * (1 << 20) // 4 // 64
    arrays = {f"layer{i}.weight": rng.standard_normal(n, dtype=np.float32) for i in range(64)}
    st = work / "model.safetensors"
    save_file(arrays, str(st))
    pt = work / "pytorch_model.bin"
    torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, pt)
    return {"safetensors": st, "torch": pt}


class _NoFingerprint:
    """The baseline's stand-in for the upload's streaming fingerprint: does nothing."""

    def __init__(self, size: int) -> None:
        pass

    def update(self, data: object) -> None:
        pass

    def result(self) -> None:
        return None


def one_upload(ckpt: Path, fingerprint: bool) -> float:
    import uvicorn
    from huggingface_hub import HfApi

    import cairn.hub.multipart
    import cairn.hub.upload
    from cairn.hub import HubConfig, create_app
    from cairn.registry import Registry
    from cairn.registry.lineage import StreamingFingerprint

    streaming: Any = StreamingFingerprint if fingerprint else _NoFingerprint
    cairn.hub.upload.StreamingFingerprint = streaming  # type: ignore[misc]
    cairn.hub.multipart.StreamingFingerprint = streaming  # type: ignore[misc]

    data = Path(tempfile.mkdtemp(prefix="cairn-bench-fp-"))
    registry = Registry.open(f"sqlite:///{data / 'hub.db'}", str(data / "blobs"))
    if not fingerprint:
        registry.lineage.on_ingest = lambda src, sha256, streamed=None: None  # type: ignore[method-assign]
        registry.lineage.ensure = lambda operations: None  # type: ignore[method-assign]
    registry.users.create_user("bench")
    token = registry.users.create_token("bench")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(registry, HubConfig()), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        api = HfApi(endpoint=f"http://127.0.0.1:{port}", token=token)
        api.create_repo("bench/ckpt")
        t0 = time.perf_counter()
        api.upload_file(path_or_fileobj=str(ckpt), path_in_repo=ckpt.name, repo_id="bench/ckpt")
        return time.perf_counter() - t0
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        registry.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
    from cairn.governance.fingerprint import fingerprint_blob

    work = Path(tempfile.mkdtemp(prefix="cairn-bench-fp-ckpt-"))
    try:
        for kind, ckpt in make_checkpoints(work, args.size_mib).items():
            size = ckpt.stat().st_size
            t0 = time.perf_counter()
            fp = fingerprint_blob(ckpt)
            alone = time.perf_counter() - t0
            assert fp is not None and len(fp.tensors) == 64
            print(f"{kind}: {size / (1 << 20):.0f} MiB, fingerprint of the file alone {alone:.3f} s")
            times: dict[bool, list[float]] = {True: [], False: []}
            for r in range(args.rounds):
                for on in (False, True) if r % 2 == 0 else (True, False):
                    t = one_upload(ckpt, on)
                    times[on].append(t)
                    print(f"  round {r + 1} fingerprint={'on ' if on else 'off'} {t:.2f} s")
            mon, moff = statistics.median(times[True]), statistics.median(times[False])
            print(f"  median: on {mon:.2f} s, off {moff:.2f} s, ratio on/off {mon / moff:.3f}")
            print(f"  fingerprint alone / best upload without it: {alone / min(times[False]):.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
