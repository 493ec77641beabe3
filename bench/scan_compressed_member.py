"""Benchmark: what reading big compressed zip members in full costs the scanner.

A deflated member whose first MiB looks like data used to be judged by that head alone; a pickle padded
past the head got through that way, so such members are now decompressed and walked in full. This
compares, in one run, the full read (cairn now) against the head-only judgement (the old baseline,
re-created by patching ``_Scan._head_suffices``) on a deflated float32 member of ``--mb`` MiB.

Run: ``.venv/bin/python bench/scan_compressed_member.py [--mb 64]``
"""

from __future__ import annotations

import argparse
import io
import time
import zipfile
from collections.abc import Callable

import numpy as np

from cairn.security import scan_bytes, scanner
from cairn.security.archives import ZipMember, member_bytes
from cairn.security.detect import sniff

__all__ = ["main"]


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    args = parser.parse_args()
    raw = np.random.default_rng(0).standard_normal(args.mb << 18).astype(np.float32).tobytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("weights.raw", raw)
    data = buf.getvalue()
    full = _best(lambda: scan_bytes(data, "w.zip"))
    current = scanner._Scan._head_suffices

    def head_only(self: scanner._Scan, view: memoryview, m: ZipMember, path: str, inner: str) -> bool:
        head, _ = member_bytes(view, m, check_crc=False, limit=1 << 20)
        return sniff(head) == "unknown" or current(self, view, m, path, inner)

    setattr(scanner._Scan, "_head_suffices", head_only)  # noqa: B010 - the old baseline, for this run only
    try:
        head = _best(lambda: scan_bytes(data, "w.zip"))
    finally:
        setattr(scanner._Scan, "_head_suffices", current)  # noqa: B010
    print(f"deflated member of {args.mb} MiB ({len(data) >> 20} MiB compressed)")
    print(f"full read (cairn now)   {full:8.3f} s  {args.mb / full:8.0f} MiB/s")
    print(f"head only (old, unsafe) {head:8.3f} s")
    print(f"ratio full / head-only  {full / head:8.1f}x")


if __name__ == "__main__":
    main()
