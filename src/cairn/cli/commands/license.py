"""``cairn license check PATH``: the lineage-aware license check over local model directories."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.output import emit
from cairn.errors import NotFoundError

__all__ = ["add_lineage_arguments", "register", "resolve_root"]


def add_lineage_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", metavar="PATH", help="a model directory (README.md with base_model, LICENSE files)"
    )
    p.add_argument(
        "--models-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="where parent models live as DIR/org/name, DIR/org--name or DIR/name (repeatable; "
        "default: the directory that holds PATH)",
    )


def resolve_root(args: argparse.Namespace) -> tuple[Any, Any]:
    """(source, resolver) for a command's PATH and --models-dir."""
    from cairn.governance.lineage import LocalResolver, LocalSource

    path = Path(args.path)
    if not path.is_dir():
        raise NotFoundError(f"{path} is not a model directory (hub repositories are not supported here yet)")
    roots = [Path(d) for d in args.models_dir] or [path.resolve().parent]
    return LocalSource(path.resolve()), LocalResolver(tuple(r.resolve() for r in roots))


def _human(data: dict[str, Any]) -> str:
    lines = [f"{data['root']}: license {data['license'] or '(none)'} — {data['status'].replace('_', ' ')}"]
    if data["inherited"]:
        lines.append(f"terms inherited from: {', '.join(data['inherited'])}")
    for title, key in (
        ("conflicts", "conflicts"),
        ("needs review", "needs_review"),
        ("obligations", "obligations"),
    ):
        if data[key]:
            lines.append(f"{title}:")
            for f in data[key]:
                mark = f"[{f['status']}] " if f["status"] else ""
                lines.append(f"  - {mark}{f['message']}")
    lines.append("A screening aid, not legal advice.")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    from cairn.governance.check import check_lineage
    from cairn.governance.lineage import walk

    source, resolver = resolve_root(args)
    report = check_lineage(walk(source, resolver, relation=args.relation), use=args.use)
    emit(report.to_dict(), as_json=args.json, human=_human)
    return report.exit_code


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("license", help="license checks along a model's lineage")
    sub = parser.add_subparsers(dest="license_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "check",
        help="report conflicts, obligations and what needs review (exit 0 none, 1 conflict, 2 undecidable)",
    )
    add_lineage_arguments(p)
    p.add_argument("--use", choices=["commercial", "research", "internal"], help="the intended use to check")
    p.add_argument(
        "--as",
        dest="relation",
        choices=["finetune", "adapter", "merge", "quantized"],
        help="the relation of PATH to its parents (default: base_model_relation, else inferred)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_check)
