"""``cairn convert IN OUT.safetensors [--force] [--json]``: a PyTorch pickle checkpoint to safetensors,
without executing it. Refuses (exit 2, listing the globals found) unless every global the pickle
references is on the tensor-rebuild allowlist.
"""

from __future__ import annotations

import argparse
from typing import Any

from cairn.cli.output import EXIT_OK, emit, human_size
from cairn.format.convert import ConvertResult, convert_to_safetensors

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert a PyTorch .bin/.pt checkpoint to safetensors without executing it",
        description="Rebuild the tensors of a PyTorch checkpoint (zip, legacy or pre-1.0 tar format) from its pickle "
        "opcodes and write them as safetensors. Refuses when the pickle references anything but "
        "tensor-rebuild globals. Non-tensor values (step counters, ...) are not carried over.",
    )
    p.add_argument("input", help="a torch.save checkpoint (.bin, .pt, .pth)")
    p.add_argument("output", help="the safetensors file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = convert_to_safetensors(args.input, args.output, overwrite=args.force)
    emit(result.to_dict(), as_json=args.json, human=lambda _d: _human(result))
    return EXIT_OK


def _human(r: ConvertResult) -> str:
    line = f"wrote {r.target}: {r.tensors} tensors, {human_size(r.nbytes)}, sha256 {r.sha256}"
    if r.dropped:
        line += f"\nnot carried over (not tensors): {', '.join(r.dropped)}"
    return line
