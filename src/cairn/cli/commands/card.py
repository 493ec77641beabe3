"""``cairn card DIR``: write or update a model card; ``cairn card DIR --check``: validate one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cairn.checkpoint.api import attach
from cairn.cli.commands.license import add_lineage_arguments, resolve_root
from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit
from cairn.errors import NotFoundError
from cairn.format.manifest import MANIFEST_NAME

__all__ = ["register"]


def _check(path: Path, as_json: bool) -> int:
    from cairn.governance.card import read_card, validate_card

    card = read_card(path)
    if card is None:
        raise NotFoundError(f"{path} has no README.md")
    issues = validate_card(card)
    data = {
        "path": str(path / "README.md"),
        "valid": not issues,
        "issues": [{"line": i.line, "field": i.field, "message": i.message} for i in issues],
    }

    def human(d: dict[str, Any]) -> str:
        if d["valid"]:
            return f"{d['path']}: no problems found"
        return "\n".join(f"{d['path']}:{i['line'] or '?'}: {i['field']}: {i['message']}" for i in d["issues"])

    emit(data, as_json=as_json, human=human)
    return EXIT_NEGATIVE if issues else EXIT_OK


def _card(args: argparse.Namespace) -> int:
    from cairn.governance.card import read_card, write_card
    from cairn.governance.cardgen import build_card
    from cairn.governance.check import check_lineage
    from cairn.governance.lineage import walk

    if args.check:
        path = Path(args.path)
        if not path.is_dir():
            raise NotFoundError(f"{path} is not a model directory")
        return _check(path, args.json)
    source, resolver = resolve_root(args)
    existing = read_card(source.path)
    graph = walk(source, resolver)
    update = build_card(source, graph, check_lineage(graph), existing)
    if args.dry_run:
        sys.stdout.write(update.text)
        return EXIT_OK
    target = write_card(source.path, update.metadata, update.body)
    if (Path(source.path) / MANIFEST_NAME).is_file():  # a cairn checkpoint lists every file it holds
        attach(source.path, [target.name])
    data = {"path": str(target), "changed_fields": list(update.changed_fields)}
    emit(data, as_json=args.json, human=lambda d: f"wrote {d['path']}")
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("card", help="write, update or validate a model card (README.md)")
    add_lineage_arguments(p)
    p.add_argument("--check", action="store_true", help="validate the card; exit 1 when it has problems")
    p.add_argument("--dry-run", action="store_true", help="print the updated README instead of writing it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_card)
