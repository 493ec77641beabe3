"""``cairn ckpt ls|show|verify``: look at training checkpoints written by the library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.checkpoint.api import verify
from cairn.checkpoint.manager import committed_steps, step_dir_name
from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, emit_error, human_size, table
from cairn.errors import FormatError, IntegrityError, NotFoundError
from cairn.format.manifest import MANIFEST_NAME, Manifest, read_manifest
from cairn.format.safetensors import read_header_path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ckpt", help="list, show and verify training checkpoints")
    cmds = parser.add_subparsers(dest="ckpt_command", metavar="SUBCOMMAND", required=True)

    ls = cmds.add_parser("ls", help="steps of a checkpoint directory with sizes and metrics")
    ls.add_argument("directory", type=Path, help="a CheckpointManager directory or one checkpoint")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=_ls)

    show = cmds.add_parser("show", help="parts, tensors and metadata of one checkpoint")
    show.add_argument("directory", type=Path)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)

    ver = cmds.add_parser(
        "verify", help="check every file against the manifest (exit 1 if it does not match)"
    )
    ver.add_argument("directory", type=Path)
    ver.add_argument("--json", action="store_true", help="print JSON")
    ver.set_defaults(handler=_verify)


def _summary(path: Path, manifest: Manifest) -> dict[str, Any]:
    return {
        "path": str(path),
        "step": manifest.step,
        "size": manifest.total_size,
        "created": manifest.created,
        "metrics": dict(manifest.metadata.get("metrics") or {}),
        "parts": sorted(manifest.parts),
    }


def _ls(args: argparse.Namespace) -> int:
    root: Path = args.directory
    if (root / MANIFEST_NAME).is_file():
        rows = [_summary(root, read_manifest(root))]
    elif root.is_dir():
        paths = [root / step_dir_name(s) for s in committed_steps(root)]
        rows = [_summary(p, read_manifest(p)) for p in paths]
    else:
        raise NotFoundError(f"{root}: no such directory")

    def human(data: list[dict[str, Any]]) -> str:
        if not data:
            return f"no checkpoints in {root}"
        return table(
            ["STEP", "SIZE", "CREATED", "METRICS"],
            [
                [
                    r["step"] if r["step"] is not None else "-",
                    human_size(r["size"]),
                    r["created"],
                    " ".join(
                        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in r["metrics"].items()
                    ),
                ]
                for r in data
            ],
        )

    emit(rows, as_json=args.json, human=human)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    root: Path = args.directory
    manifest = read_manifest(root)
    parts: dict[str, Any] = {}
    for name, part in manifest.parts.items():
        tensors: list[dict[str, Any]] = []
        numel = 0
        for rel in part.files:
            header = read_header_path(root / rel)
            for t in header.tensors.values():
                tensors.append({"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "file": rel})
                numel += t.numel
        parts[name] = {
            "files": list(part.files),
            "bytes": part.bytes,
            "tensors": tensors,
            "aliases": dict(part.aliases),
            "parameters": numel,
        }
    data = {**_summary(root, manifest), "format_version": manifest.format_version, "parts": parts}
    data["metadata"] = dict(manifest.metadata)

    def human(d: dict[str, Any]) -> str:
        lines = [f"checkpoint {d['path']}  step {d['step']}  {human_size(d['size'])}  created {d['created']}"]
        for name, p in d["parts"].items():
            lines.append(
                f"\n[{name}]  {len(p['tensors'])} tensors, {p['parameters']:,} values, {human_size(p['bytes'])}"
            )
            shown = p["tensors"][:20]
            if shown:
                lines.append(
                    table(["TENSOR", "DTYPE", "SHAPE"], [[t["name"], t["dtype"], t["shape"]] for t in shown])
                )
            if len(p["tensors"]) > len(shown):
                lines.append(f"... and {len(p['tensors']) - len(shown)} more (use --json for all)")
        meta = d["metadata"]
        lines.append("\n[metadata]")
        for key in ("epoch", "metrics", "hyperparameters", "datasets", "code", "lineage", "data_position"):
            if key in meta:
                lines.append(f"{key}: {meta[key]}")
        env = meta.get("environment") or {}
        if env:
            lines.append(
                f"environment: python {env.get('python')}, {env.get('libraries')}, device {env.get('device')}"
            )
        return "\n".join(lines)

    emit(data, as_json=args.json, human=human)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    root: Path = args.directory
    try:
        manifest = verify(root)
    except (IntegrityError, FormatError) as err:
        emit_error(err, as_json=args.json)
        return EXIT_NEGATIVE
    except NotFoundError as err:
        if (root / MANIFEST_NAME).is_file():  # a file the manifest lists is missing: a failed verification
            emit_error(err, as_json=args.json)
            return EXIT_NEGATIVE
        raise
    result = {"path": str(root), "ok": True, "files": len(manifest.files), "size": manifest.total_size}
    emit(
        result, as_json=args.json, human=lambda r: f"ok: {r['files']} files, {human_size(r['size'])} verified"
    )
    return EXIT_OK
