"""Benchmark: cairn's scanner against picklescan and modelscan (both from PyPI) on one corpus, in one run.

The corpus is the test suite's: one hostile file per technique (``tests/security/security_corpus.py``) and
ordinary checkpoints (torch state dicts, whole modules, optimizers, legacy files, NumPy, safetensors,
joblib, archives), plus one large state-dict ``.bin`` to show that scan time does not grow with tensor
bytes. A tool *catches* a hostile file when it reports an issue or an error for it (anything but "clean");
it raises a *false positive* when it reports an issue or an error for a benign file. Times are the best
of three passes after a first pass that collects the verdicts.

Run: ``.venv/bin/python bench/scan_corpus.py [--big-mb 1024]``
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "security"))

from security_corpus import CASES, build_benign, build_corpus

from cairn.security import archives, scan

# the corpus's bomb is 8 MiB of zeros (8 KiB on disk), to keep it cheap to build: lower cairn's 1 GiB
# per-member limit to 1 MiB so that it counts as one, as the tests do
archives.MAX_MEMBER_BYTES = 1 << 20


def _cairn(path: Path) -> bool:
    report = scan([path])
    return report.exit_status() != 0


def _picklescan(path: Path) -> bool:
    from picklescan.scanner import scan_file_path

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = scan_file_path(str(path))
    except Exception:  # picklescan raises on formats it cannot open: that is not "clean"
        return True
    return bool(result.issues_count or result.scan_err)


def _modelscan(path: Path) -> bool:
    from modelscan.modelscan import ModelScan

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = ModelScan().scan(str(path))
    return bool(result["summary"]["total_issues"] or result["errors"])


def _big_state_dict(folder: Path, megabytes: int, *, legacy: bool = False) -> Path:
    import torch

    path = folder / ("big_legacy.bin" if legacy else "big_pytorch_model.bin")
    n = megabytes * (1 << 20) // 4 // 64
    torch.save(
        {f"layer.{i}.weight": torch.zeros(n) for i in range(64)},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


def _timed(fn: Callable[[Path], bool], paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        fn(path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big-mb", type=int, default=512, help="size of the large state dict (default 512)")
    args = parser.parse_args()
    tools: dict[str, Callable[[Path], bool]] = {"cairn": _cairn}
    for name, fn in (("picklescan", _picklescan), ("modelscan", _modelscan)):
        try:
            fn(Path(__file__))
            tools[name] = fn
        except ImportError:
            print(f"{name}: not installed, skipped")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_corpus(root / "bad")
        build_benign(root / "good")
        seen: set[str] = set()
        bad: list[Path] = []
        for case in CASES:  # several cases share one file content; count each file once
            path = root / "bad" / case.name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                bad.append(path)
        good = sorted(p for p in (root / "good").iterdir() if p.suffix != ".md")
        bigs = [_big_state_dict(root, args.big_mb), _big_state_dict(root, args.big_mb, legacy=True)]
        print(
            f"corpus: {len(bad)} hostile files, {len(good)} benign files; "
            f"big: a zip and a legacy state dict of {args.big_mb} MiB each ('big s' is both together)"
        )
        rows: dict[str, tuple[int, list[str], list[str], float, float]] = {}
        for name, fn in tools.items():
            missed = [p.name for p in bad if not fn(p)]  # first pass: verdicts (and warm imports)
            false = [p.name for p in good if fn(p)]
            false.extend(big.name for big in bigs if fn(big))
            corpus_s = min(_timed(fn, bad + good) for _ in range(3))
            big_s = min(_timed(fn, bigs) for _ in range(3))
            rows[name] = (len(bad) - len(missed), missed, false, corpus_s, big_s)
    base = rows["cairn"]
    print(
        f"{'tool':<11} {'caught':>7} {'missed':>7} {'false+':>7} {'corpus s':>9} {'big s':>7}  ratio(corpus, big) vs cairn"
    )
    for name, (caught, missed, false, corpus_s, big_s) in rows.items():
        print(
            f"{name:<11} {caught:>7} {len(missed):>7} {len(false):>7} {corpus_s:>9.3f} {big_s:>7.3f}"
            f"  {corpus_s / base[3]:.1f}x, {big_s / base[4]:.1f}x"
        )
    for name, (_, missed, false, _, _) in rows.items():
        if missed:
            print(f"{name} missed: {', '.join(missed)}")
        if false:
            print(f"{name} false positives: {', '.join(false)}")


if __name__ == "__main__":
    main()
