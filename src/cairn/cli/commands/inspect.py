"""``cairn inspect PATH [--json] [--tree] [--stats]``: what a checkpoint holds, read without executing it.

Exit status: 0 ok; 1 with ``--stats`` when a tensor holds NaN or Inf; 2 on error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, human_size, table
from cairn.format.inspection import Inspection, tree
from cairn.format.reader import inspect_path
from cairn.format.stats import TensorStats, stats_all

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="list a checkpoint's tensors, dtypes, shapes and metadata without executing it",
        description="Read a checkpoint file or folder structurally (safetensors, torch, GGUF, ONNX, "
        "NumPy, Keras, pickle) and describe it. Nothing in the file is executed.",
    )
    p.add_argument("path", help="a checkpoint file or a Hugging Face-style folder")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--tree", action="store_true", help="group tensors by module path")
    p.add_argument("--stats", action="store_true", help="per-tensor statistics, streamed (exit 1 on NaN/Inf)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    info = inspect_path(args.path)
    data = info.to_dict()
    stats: list[TensorStats] = []
    if args.stats:
        skipped = []
        for rec, st in stats_all(info.tensors):
            if st is None:
                skipped.append(rec.name)
            else:
                stats.append(st)
        data["stats"] = [s.to_dict() for s in stats]
        data["stats_skipped"] = skipped
        data["flagged"] = [s.name for s in stats if s.flagged]
    if args.tree:
        data["tree"] = tree(info.tensors)
    emit(data, as_json=args.json, human=lambda d: _human(info, d, stats))
    return EXIT_NEGATIVE if any(s.flagged for s in stats) else EXIT_OK


def _human(info: Inspection, data: dict[str, Any], stats: list[TensorStats]) -> str:
    lines = [f"{info.path}: {info.format}, {len(info.tensors)} tensors, {info.parameters:,} parameters, "]
    lines[0] += human_size(info.nbytes)
    if info.config is not None:
        lines.append("config: " + ", ".join(f"{k}={v}" for k, v in info.config.to_dict().items()))
    if info.metadata:
        lines.append("metadata: " + json.dumps(dict(info.metadata), default=str)[:2000])
    if info.globals:
        lines.append("globals: " + ", ".join(info.globals))
    for w in info.warnings:
        lines.append(f"warning: {w}")
    if info.tensors and isinstance(info.structure, dict):  # a checkpoint's plain values: epoch, step...
        plain = {k: v for k, v in info.structure.items() if isinstance(v, int | float | bool | None)}
        plain |= {
            k: v for k, v in info.structure.items() if isinstance(v, str) and not v.startswith("tensor ")
        }
        if plain:
            lines.append("values: " + ", ".join(f"{k}={v}" for k, v in list(plain.items())[:20]))
    if not info.tensors and info.structure is not None:  # a plain pickle: show what it would build
        shown = json.dumps(info.structure, indent=2, default=str)
        lines += ["structure:", shown if len(shown) <= 4000 else shown[:4000] + "\n… (use --json for all)"]
    totals = data["totals_by_dtype"]
    if totals:
        rows = [(k, v["tensors"], f"{v['parameters']:,}", human_size(v["nbytes"])) for k, v in totals.items()]
        lines += ["", table(["dtype", "tensors", "parameters", "size"], rows)]
    if "tree" in data:
        lines += ["", *_tree_lines(data["tree"], 0)]
    elif info.tensors and not stats:
        rows2 = [(t.name, t.dtype, list(t.shape), f"{t.numel:,}") for t in info.tensors]
        lines += ["", table(["name", "dtype", "shape", "parameters"], rows2)]
    if stats:
        rows3 = [
            (s.name, _f(s.mean), _f(s.std), _f(s.min), _f(s.max), _f(s.absmax), s.nan, s.inf, f"{s.zeros:.3f}",
             "NaN/Inf" if s.flagged else "")
            for s in stats
        ]  # fmt: skip
        lines += [
            "",
            table(["name", "mean", "std", "min", "max", "absmax", "nan", "inf", "zeros", ""], rows3),
        ]
        flagged = data["flagged"]
        if flagged:
            lines.append(f"{len(flagged)} tensors hold NaN or Inf")
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _tree_lines(node: dict[str, Any], depth: int) -> list[str]:
    out = []
    for key, value in node.items():
        if key == "#parameters":
            continue
        if isinstance(value, dict):
            out.append(f"{'  ' * depth}{key or '(self)'}  ({value['#parameters']:,} parameters)")
            out += _tree_lines(value, depth + 1)
        else:
            out.append(f"{'  ' * depth}{key or '(self)'}  {value}")
    return out
