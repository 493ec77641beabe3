"""``cairn diff A B [--json]``: which tensors were added, removed or changed between two checkpoints.

Works across formats (a torch ``.bin`` against a ``.safetensors``). Exit status: 0 when every tensor is
identical, 1 when anything differs, 2 on error.
"""

from __future__ import annotations

import argparse
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, table
from cairn.format.diff import DiffResult, diff_inspections
from cairn.format.reader import inspect_path

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diff",
        help="compare the tensors of two checkpoints (exit 0 identical, 1 differs, 2 error)",
        description="Compare two checkpoints tensor by tensor, in any supported formats, without "
        "executing them: added, removed, changed in shape or dtype, identical, and changed values "
        "(relative L2 and max absolute difference).",
    )
    p.add_argument("a", help="the first checkpoint (file or folder)")
    p.add_argument("b", help="the second checkpoint (file or folder)")
    p.add_argument(
        "--strip",
        action="append",
        default=[],
        metavar="PREFIX",
        help="match names without this prefix, e.g. 'state_dict.' or 'module.' (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = diff_inspections(inspect_path(args.a), inspect_path(args.b), strip=args.strip)
    emit(result.to_dict(), as_json=args.json, human=lambda _d: _human(result))
    return EXIT_OK if result.identical else EXIT_NEGATIVE


def _human(result: DiffResult) -> str:
    lines = [f"--- {result.a}", f"+++ {result.b}"]
    lines += [f"+ {name}" for name in result.added]
    lines += [f"- {name}" for name in result.removed]
    rows = []
    for c in result.changes:
        if c.kind == "shape_or_dtype":
            rows.append((c.name, f"{c.a} -> {c.b}", "", ""))
        elif c.kind == "changed":
            rows.append((c.name, c.a, _f(c.rel_l2), _f(c.max_abs)))
    if rows:
        lines += ["", table(["changed", "dtype/shape", "rel_l2", "max_abs"], rows)]
    lines += ["", result.summary()]
    return "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"
