"""``cairn lineage PATH``: declared parents, whether the weights support them, and likely undeclared ones."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.commands.license import add_lineage_arguments, resolve_root
from cairn.cli.output import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK, emit, table
from cairn.errors import CairnError

__all__ = ["register"]


def _candidates(dirs: list[str], exclude: set[Path]) -> list[Path]:
    """Model directories among --candidates: each DIR itself if it holds safetensors, else its subdirectories."""
    out: list[Path] = []
    for d in dirs:
        p = Path(d).resolve()
        found = (
            [p]
            if any(p.glob("*.safetensors"))
            else sorted(q for q in p.rglob("*") if q.is_dir() and any(q.glob("*.safetensors")))
        )
        out += [q for q in found if q not in exclude and q not in out]
    return out


def _human(d: dict[str, Any]) -> str:
    rows = [
        (
            r["ref"],
            r["relation"],
            r.get("verdict", "-"),
            r.get("identical", "-"),
            r.get("similarity", "-"),
            r.get("error", ""),
        )
        for r in d["declared"]
    ]
    lines = [f"{d['path']}: {len(d['declared'])} declared parent(s)"]
    if rows:
        lines.append(table(["parent", "declared", "weights say", "identical", "similarity", "note"], rows))
    if d["undeclared"]:
        lines.append("likely undeclared parents:")
        lines += [
            f"  - {u['path']}: {u['verdict']} (identical {u['identical']}, similarity {u['similarity']})"
            for u in d["undeclared"]
        ]
    return "\n".join(lines)


def _lineage(args: argparse.Namespace) -> int:
    from cairn.governance.fingerprint import compare, fingerprint_model
    from cairn.governance.lineage import read_node

    source, resolver = resolve_root(args)
    mine = fingerprint_model(source.path)  # errors here (no weights, torch pickle) are exit 2
    node = read_node(source)
    declared, status, parents = [], EXIT_OK, {source.path}
    for edge in node.parents:
        row: dict[str, Any] = {"ref": edge.ref, "relation": edge.relation}
        try:
            parent_path = Path(resolver.resolve(edge.ref, child=source).ident)
            parents.add(parent_path)
            cmp = compare(mine, fingerprint_model(parent_path))
            row.update(
                path=str(parent_path),
                verdict=cmp.verdict,
                identical=cmp.identical,
                similarity=cmp.similarity,
                supported=cmp.supports_lineage,
            )
            if not cmp.supports_lineage and status == EXIT_OK:
                status = EXIT_NEGATIVE
        except CairnError as err:
            row.update(error=err.message, supported=None)
            status = EXIT_ERROR
        declared.append(row)
    undeclared = []
    for cand in _candidates(args.candidates, parents):
        try:
            cmp = compare(mine, fingerprint_model(cand))
        except CairnError:
            continue
        if cmp.supports_lineage:
            undeclared.append(
                {
                    "path": str(cand),
                    "verdict": cmp.verdict,
                    "identical": cmp.identical,
                    "similarity": cmp.similarity,
                }
            )
    emit(
        {"path": str(source.path), "declared": declared, "undeclared": undeclared},
        as_json=args.json,
        human=_human,
    )
    return status


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lineage",
        help="check declared parents against the weights (exit 1: a claim the weights do not support)",
    )
    add_lineage_arguments(p)
    p.add_argument(
        "--candidates",
        action="append",
        default=[],
        metavar="DIR",
        help="model directories to search for undeclared parents (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_lineage)
