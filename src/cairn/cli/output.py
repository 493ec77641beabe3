"""Rendering for the CLI: human text on stdout, errors on stderr, ``--json`` as one JSON document."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cairn.errors import CairnError

__all__ = ["EXIT_ERROR", "EXIT_NEGATIVE", "EXIT_OK", "emit", "emit_error", "human_size", "table"]

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_ERROR = 2


def emit(data: Any, *, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print ``data`` as JSON, or as the text ``human(data)`` returns."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    else:
        sys.stdout.write((human(data) if human else str(data)).rstrip("\n") + "\n")


def emit_error(err: CairnError, *, as_json: bool) -> None:
    """Errors go to stderr; with ``--json`` they are also one JSON object on stdout."""
    if as_json:
        sys.stdout.write(json.dumps({"error": err.to_dict()}, default=str) + "\n")
    sys.stderr.write(f"cairn: error: {err.message}\n")


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
