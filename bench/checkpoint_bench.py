"""Save/load throughput, async stall and peak memory of cairn checkpoints against their baselines.

    .venv/bin/python bench/checkpoint_bench.py [--gib 1.0] [--repeat 3] [--dir /tmp/cairn-bench]

The state is a transformer-shaped model (embedding, blocks of attention and MLP matrices, norms) plus its
AdamW state (two moments per parameter), float32, about ``--gib`` GiB in all. Every figure is the median of
``--repeat`` runs; ratios compare cairn with each baseline measured in the same run. cairn's save includes
fsync and sha256 of every byte, which the baselines do not do; the ``+fsync`` baselines show the cost of
durability alone. Loads are measured four ways: ``verify=False`` (sizes and headers only), cold (every byte
hashed: the verified-file stat cache switched off), ``verify="full"`` (always hashes) and warm (the
default ``verify=True`` right after a save, when the stat cache vouches for the files cairn wrote). The
machine's load average is printed, since other processes skew every figure.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from safetensors.torch import load_file, save_file

import cairn
from cairn.format.statcache import ENV_VAR


def make_state(gib: float) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    dim = 1024
    per_block = 12 * dim * dim  # qkv + out (4 d^2) + mlp (8 d^2)
    total_params = int(gib * (1 << 30) / 4 / 3)  # weights + 2 AdamW moments
    blocks = max(1, (total_params - 32000 * dim) // per_block)
    layers: list[torch.nn.Module] = [torch.nn.Embedding(32000, dim)]
    for _ in range(blocks):
        layers += [
            torch.nn.LayerNorm(dim),
            torch.nn.Linear(dim, 3 * dim),
            torch.nn.Linear(dim, dim),
            torch.nn.Linear(dim, 4 * dim),
            torch.nn.Linear(4 * dim, dim),
        ]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for p in model.parameters():  # materialise the optimizer state without a forward pass
        p.grad = torch.randn_like(p) * 1e-3
    opt.step()
    opt.zero_grad(set_to_none=True)
    return model, opt


def flat_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in model.state_dict().items()}
    for pid, state in opt.state_dict()["state"].items():
        out.update({f"opt.{pid}.{k}": v for k, v in state.items() if v.dim() > 0})
    return out


def nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def drop_caches_if_possible() -> None:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every millisecond."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss - self.base)


Case = tuple[str, Callable[[], Any], Callable[[], None] | None]  # name, measured call, untimed setup


def timed_rounds(cases: list[Case], repeat: int) -> list[tuple[str, float, int]]:
    """(name, median seconds, peak extra RSS) of each case. The cases take turns, round after round, so
    that a change in the machine's load (other processes) hits every case alike."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    peaks: dict[str, list[int]] = {name: [] for name, _, _ in cases}
    for _ in range(repeat):
        for name, fn, before in cases:
            if before:
                before()
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                result = fn()
                times[name].append(time.perf_counter() - t0)
            peaks[name].append(mem.peak)
            del result
            gc.collect()
    return [(name, statistics.median(times[name]), max(peaks[name])) for name, _, _ in cases]


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/cairn-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    os.environ[ENV_VAR] = str(args.dir / "verified-cache")  # saves record here, not in the user's cache
    torch.set_num_threads(2)

    model, opt = make_state(args.gib)
    flat = flat_tensors(model, opt)
    size = nbytes(flat)
    gib = size / (1 << 30)
    print(f"state: {len(flat)} tensors, {gib:.2f} GiB (model + AdamW), {os.cpu_count()} CPUs")
    print("load average at start: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))

    def fresh(p: Path) -> None:
        shutil.rmtree(p, ignore_errors=True)
        p.unlink(missing_ok=True) if p.is_file() else None

    pt, st, ck = args.dir / "state.pt", args.dir / "state.safetensors", args.dir / "ck"

    def torch_save() -> None:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, pt)

    def torch_save_fsync() -> None:
        torch_save()
        fsync_file(pt)

    def st_save() -> None:
        save_file(flat, st)

    def st_save_fsync() -> None:
        st_save()
        fsync_file(st)

    def cairn_save() -> None:
        cairn.save(ck, model=model, optimizer=opt, overwrite=True)

    def clean(target: Path) -> Callable[[], None]:
        def before() -> None:  # no file left, no dirty page of an earlier save still being written back
            fresh(target)
            os.sync()

        return before

    rows = timed_rounds(
        [
            ("torch.save", torch_save, clean(pt)),
            ("torch.save + fsync", torch_save_fsync, clean(pt)),
            ("safetensors save_file", st_save, clean(st)),
            ("safetensors save_file + fsync", st_save_fsync, clean(st)),
            ("cairn.save (fsync + sha256)", cairn_save, clean(ck)),
        ],
        args.repeat,
    )

    print(f"{'SAVE':34s} {'seconds':>8s} {'GiB/s':>7s} {'peak extra RAM':>15s}")
    for name, t, peak in rows:
        print(f"{name:34s} {t:8.2f} {gib / t:7.2f} {peak / size:13.2f}x")
    cairn_t = rows[-1][1]
    for name, t, _ in rows[:-1]:
        print(f"  cairn.save speed vs {name}: {t / cairn_t:.2f}x")

    fresh(ck)
    cairn_save()  # recorded in the stat cache, as every save is
    torch_save()
    st_save()
    opt_template = opt.state_dict()

    def touch() -> float:
        """Read every byte of model and optimizer state, so lazily mapped baselines pay for their reads."""
        total = 0.0
        for t in model.state_dict().values():
            total += float(t.sum())
        for state in opt.state_dict()["state"].values():
            total += sum(float(v.sum()) for v in state.values())
        return total

    def torch_load() -> float:
        sd = torch.load(pt, mmap=True, weights_only=True)
        model.load_state_dict(sd["model"])
        opt.load_state_dict(sd["optimizer"])
        return touch()

    def st_load() -> float:
        tensors = load_file(st)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, entry in opt_template["state"].items():
            state[pid]["step"] = entry["step"]  # 0-dim, not in the flat file
        opt.load_state_dict({"state": state, "param_groups": opt_template["param_groups"]})
        return touch()

    checked: dict[str, dict[str, set[str]]] = {}  # label -> outcome -> files

    def cairn_load(verify: bool | str, cache: str, label: str) -> float:
        os.environ[ENV_VAR] = cache
        result = cairn.load(ck, model=model, optimizer=opt, verify=verify)  # type: ignore[arg-type]
        for rel, outcome in result.checked.items():
            checked.setdefault(label, {}).setdefault(outcome, set()).add(rel)
        return touch()

    cache_dir = str(args.dir / "verified-cache")
    loads = timed_rounds(
        [
            ("torch.load(mmap, weights_only)", torch_load, None),
            ("safetensors load_file", st_load, None),
            ("cairn.load warm (stat cache)", lambda: cairn_load(True, cache_dir, "warm"), None),
            ("cairn.load(verify=False)", lambda: cairn_load(False, cache_dir, "verify=False"), None),
            ("cairn.load cold (hash, no cache)", lambda: cairn_load(True, "off", "cold"), None),
            ('cairn.load(verify="full")', lambda: cairn_load("full", cache_dir, "full"), None),
        ],
        args.repeat,
    )
    print(f"\n{'LOAD into model + AdamW, page cache warm':34s} {'seconds':>8s} {'GiB/s':>7s}")
    for name, t, _ in loads:
        print(f"{name:34s} {t:8.2f} {gib / t:7.2f}")
    for mine in loads[2:]:
        for name, t, _ in loads[:2]:
            print(f"  {mine[0]} speed vs {name}: {t / mine[1]:.2f}x")
    for label, outcomes in checked.items():
        print(
            f"  {label} loads: "
            + "; ".join(f"{o}: {', '.join(sorted(f))}" for o, f in sorted(outcomes.items()))
        )
    print(
        "  (a file written within the racy-timestamp margin before a save ended is hashed by the next load)"
    )

    root = args.dir / "run"
    shutil.rmtree(root, ignore_errors=True)
    sync_mgr = cairn.CheckpointManager(args.dir / "run-sync", async_save=False)
    async_mgr = cairn.CheckpointManager(root, async_save=True, keep_policy=cairn.policies.LatestN(1))
    sync_times, stalls, async_peaks = [], [], []
    for step in range(args.repeat + 1):
        t0 = time.perf_counter()
        sync_mgr.save(step, model=model, optimizer=opt)
        sync_times.append(time.perf_counter() - t0)
        shutil.rmtree(sync_mgr.path(step))
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            async_mgr.save(step, model=model, optimizer=opt)
            stalls.append(time.perf_counter() - t0)
            async_mgr.wait()
        async_peaks.append(mem.peak)
    first_stall = stalls[0]
    sync_t, stall = statistics.median(sync_times[1:]), statistics.median(stalls[1:])
    print(f"\n{'ASYNC SAVE (CheckpointManager)':34s} {'seconds':>8s}")
    print(f"{'synchronous save':34s} {sync_t:8.2f}")
    print(f"{'async stall, first save':34s} {first_stall:8.2f}   (allocates the host buffers)")
    print(f"{'async stall, steady state':34s} {stall:8.2f}   = {stall / sync_t:.1%} of the synchronous save")
    print(
        f"{'async peak extra RAM, first save':34s} {async_peaks[0] / size:8.2f}x the state size (host copy)"
    )
    print(
        f"{'async peak extra RAM, steady':34s} {max(async_peaks[1:]) / size:8.2f}x (the host copy is reused)"
    )
    print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
