"""``cairn openness PATH|REPO``: the Model Openness Framework class of a model directory, a hub repo or a MOT record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit
from cairn.errors import NotFoundError

__all__ = ["register"]

_MAX_MOT_BYTES = 256 << 10


def _human(d: dict[str, Any]) -> str:
    lines = [f"{d['name']}: {d['label']}"]
    lines += [
        f"  Class {'I' * int(k) if k != '3' else 'III'} progress: {v:.0%}" for k, v in d["progress"].items()
    ]
    if d["missing_for_next_class"]:
        lines.append("missing for the next class:")
        lines += [f"  - {m['component']}: {m['reason']}" for m in d["missing_for_next_class"]]
    lines += [f"warning: {w}" for w in d["warnings"]]
    return "\n".join(lines)


def _openness(args: argparse.Namespace) -> int:
    from cairn.cli.commands.license import open_root
    from cairn.client.refs import looks_like_repo_ref
    from cairn.governance.lineage import LocalSource, read_node
    from cairn.governance.openness import classify, inventory_from_source, read_mot, write_mot

    path = Path(args.path)
    if path.is_dir():
        source = LocalSource(path.resolve())
        inv = inventory_from_source(source, read_node(source))
    elif not path.exists() and looks_like_repo_ref(args.path):
        with open_root(args) as (hub_source, _):
            inv = inventory_from_source(hub_source, read_node(hub_source))
    elif path.is_file():
        if path.stat().st_size > _MAX_MOT_BYTES:
            from cairn.errors import LimitExceededError

            raise LimitExceededError(f"MOT record is larger than {_MAX_MOT_BYTES} bytes", path=path)
        inv = read_mot(path.read_text(encoding="utf-8", errors="replace"))
    else:
        raise NotFoundError(f"{path} is neither a model directory, a hub repo nor a MOT record")
    result = classify(inv)
    if args.export_mot:
        Path(args.export_mot).write_text(write_mot(inv), encoding="utf-8")
    emit({"name": inv.name, **result.to_dict()}, as_json=args.json, human=_human)
    return EXIT_OK if result.mof_class else EXIT_NEGATIVE


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("openness", help="Model Openness Framework class (exit 1 when unclassified)")
    p.add_argument(
        "path",
        metavar="PATH|REPO",
        help="a model directory, a hub repo org/name[@revision], or a Model Openness Tool YAML record",
    )
    p.add_argument("--endpoint", help="hub URL for REPO (default: $HF_ENDPOINT)")
    p.add_argument("--token", help="access token (default: $HF_TOKEN; needs an explicit endpoint)")
    p.set_defaults(models_dir=[])
    p.add_argument("--export-mot", metavar="FILE", help="also write the inventory as a MOT YAML record")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_openness)
