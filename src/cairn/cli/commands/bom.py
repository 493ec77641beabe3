"""``cairn bom PATH|REPO --format cyclonedx|spdx [-o FILE]``: an AI bill of materials for a model directory or hub repo."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cairn.cli.commands.license import add_lineage_arguments, open_root
from cairn.cli.output import EXIT_OK

__all__ = ["register"]


def _bom(args: argparse.Namespace) -> int:
    from cairn.governance.bom import BomInput, cyclonedx_bom, hash_directory
    from cairn.governance.check import check_lineage
    from cairn.governance.lineage import LocalSource, walk
    from cairn.governance.spdx import spdx_document

    with open_root(args) as (source, resolver):
        graph = walk(source, resolver)
        if isinstance(source, LocalSource):
            hashes, location = hash_directory(source.path), source.path.as_uri()
        else:  # a hub repo: digests from the listing (LFS) or of the small files, never the weights
            hashes, location = source.sha256s(), source.url
        inp = BomInput(graph, check_lineage(graph), hashes, download_location=location)
    doc = cyclonedx_bom(inp) if args.format == "cyclonedx" else spdx_document(inp)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {args.output}\n")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bom", help="export an AI bill of materials (CycloneDX 1.6 ML-BOM or SPDX 3.0.1 AI)"
    )
    add_lineage_arguments(p)
    p.add_argument(
        "--format",
        choices=["cyclonedx", "spdx"],
        default="cyclonedx",
        help="the BOM format (default: cyclonedx)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--json", action="store_true", help="accepted for symmetry: the BOM is always JSON")
    p.set_defaults(handler=_bom)
