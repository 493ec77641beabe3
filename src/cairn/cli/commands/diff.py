"""``cairn diff A B [--json]``: which tensors were added, removed or changed between two checkpoints.

Works across formats (a torch ``.bin`` against a ``.safetensors``). Either side may also be a hub
revision, ``org/name[@rev]`` (one that is not a local path): then both sides are compared by their
weight fingerprints (per-tensor sha256 and a 64-value sketch), the hub's taken on upload and a local
side's computed here, so no weights are downloaded; changed tensors then get a sketch similarity
instead of exact differences. Exit status: 0 when every tensor is identical, 1 when anything differs,
2 on error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK, emit, table
from cairn.format.diff import DiffResult, diff_inspections
from cairn.format.reader import inspect_path
from cairn.governance.fingerprint_diff import TensorDiff, diff_fingerprints

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diff",
        help="compare the tensors of two checkpoints (exit 0 identical, 1 differs, 2 error)",
        description="Compare two checkpoints tensor by tensor, in any supported formats, without "
        "executing them: added, removed, changed in shape or dtype, identical, and changed values "
        "(relative L2 and max absolute difference). Either side may be a hub revision org/name[@rev]: "
        "then both are compared by their weight fingerprints (per-tensor hash and value sketch), and no "
        "weights are downloaded.",
    )
    p.add_argument("a", help="the first checkpoint (file or folder, or a hub revision org/name[@rev])")
    p.add_argument("b", help="the second checkpoint (file or folder, or a hub revision org/name[@rev])")
    p.add_argument(
        "--strip",
        action="append",
        default=[],
        metavar="PREFIX",
        help="match names without this prefix, e.g. 'state_dict.' or 'module.' (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--endpoint", default=None, help="the hub of org/name sides (default: $HF_ENDPOINT)")
    p.add_argument("--token", default=None, help="token for the hub (default: $HF_TOKEN)")
    p.set_defaults(handler=run)


def _remote(arg: str) -> bool:
    from cairn.client.refs import looks_like_repo_ref

    return not Path(arg).exists() and looks_like_repo_ref(arg)


def run(args: argparse.Namespace) -> int:
    if _remote(args.a) or _remote(args.b):
        return _fingerprint_diff(args)
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


def _fingerprint_diff(args: argparse.Namespace) -> int:
    """Both sides by their weight fingerprints: a hub revision's from the hub, a local side's computed."""
    from cairn.client.http import HubSession
    from cairn.client.settings import client_settings

    settings = client_settings(endpoint=args.endpoint, token=args.token)
    with HubSession(settings.endpoint, settings.token) as session:
        a, a_missing, a_label = _side(session, args.a)
        b, b_missing, b_label = _side(session, args.b)
    found = diff_fingerprints(a, b)
    missing = a_missing + b_missing
    data = {"a": a_label, "b": b_label, **found.to_dict(), "notFingerprinted": missing}
    emit(data, as_json=args.json, human=lambda _d: _fingerprint_human(a_label, b_label, found, missing))
    if missing and not found.changes:
        return EXIT_ERROR  # nothing differs among the tensors we know, but some were not compared
    return EXIT_NEGATIVE if found.changes else EXIT_OK


def _side(session: Any, arg: str) -> tuple[Any, list[str], str]:
    """(fingerprint, weight files not fingerprinted, the side's label: a hub side names its commit)."""
    from cairn.governance.fingerprint import fingerprint_model

    if not _remote(arg):
        return fingerprint_model(arg), [], arg
    from cairn.client.governance import fetch_fingerprint

    commit, fp, missing = fetch_fingerprint(session, arg)
    return fp, [f"{arg}: {m}" for m in missing], f"{arg} ({commit[:12]})"


def _fingerprint_human(a: str, b: str, found: TensorDiff, missing: list[str]) -> str:
    lines = [f"--- {a}", f"+++ {b}"]
    rows = []
    for c in found.changes:
        if c.status == "added" and c.new is not None:
            lines.append(f"+ {c.name}")
        elif c.status == "removed":
            lines.append(f"- {c.name}")
        elif c.status == "retyped" and c.old is not None and c.new is not None:
            rows.append(
                (c.name, f"{c.old.dtype} {list(c.old.shape)} -> {c.new.dtype} {list(c.new.shape)}", "")
            )
        elif c.new is not None:
            rows.append((c.name, f"{c.new.dtype} {list(c.new.shape)}", _f(c.similarity)))
    if rows:
        lines += ["", table(["changed", "dtype/shape", "sketch similarity"], rows)]
    counts = found.counts
    summary = (
        f"{counts['identical']} identical, {counts['changed']} changed, {counts['retyped']} shape_or_dtype, "
        f"{counts['added']} added, {counts['removed']} removed"
    )
    if found.relation:
        summary += f"; the second against the first: {found.relation}"
    lines += ["", summary + " (by weight fingerprints)"]
    if found.truncated:
        lines.append(f"only the first {len(found.changes)} changes are listed")
    lines += [f"not fingerprinted, not compared: {m}" for m in missing]
    return "\n".join(lines)
