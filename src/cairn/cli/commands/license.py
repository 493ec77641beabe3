"""``cairn license check PATH|REPO``: the lineage-aware license check over model directories and hub repos."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cairn.cli.output import emit
from cairn.errors import NotFoundError

__all__ = ["add_lineage_arguments", "open_root", "register"]


def add_lineage_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path",
        metavar="PATH|REPO",
        help="a model directory (README.md with base_model, LICENSE files), or a hub repo "
        "org/name[@revision] (only its small files are read, never its weights)",
    )
    p.add_argument(
        "--models-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="where parent models live as DIR/org/name, DIR/org--name or DIR/name (repeatable; "
        "default: the directory that holds PATH)",
    )
    p.add_argument(
        "--endpoint",
        help="hub URL for REPO and for parents not found locally (default: $HF_ENDPOINT; parents are "
        "looked up on a hub only when one is chosen, or when the model itself is a REPO)",
    )
    p.add_argument("--token", help="access token (default: $HF_TOKEN; needs an explicit endpoint)")


@contextlib.contextmanager
def open_root(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """(source, resolver) for a command's PATH|REPO, --models-dir and --endpoint/--token.

    A local PATH resolves parents in the model directories, then on the hub when an endpoint was
    chosen (``--endpoint`` or ``HF_ENDPOINT``); a REPO is read from the hub and resolves parents there
    (and in ``--models-dir`` when given). A REPO the hub does not show is a typed error (exit 2)."""
    from cairn.client.refs import looks_like_repo_ref
    from cairn.governance.lineage import LocalResolver, LocalSource

    path = Path(args.path)
    local = path.is_dir()
    if not local and not looks_like_repo_ref(args.path):
        raise NotFoundError(f"{path} is neither a model directory nor a hub repository (org/name[@rev])")
    chosen = args.endpoint or os.environ.get("HF_ENDPOINT")
    with contextlib.ExitStack() as stack:
        resolvers: list[Any] = []
        roots = [Path(d) for d in args.models_dir] or ([path.resolve().parent] if local else [])
        if roots:
            resolvers.append(LocalResolver(tuple(r.resolve() for r in roots)))
        source: Any = LocalSource(path.resolve()) if local else None
        if not local or chosen:
            from cairn.client.governance import RemoteResolver, open_remote_source
            from cairn.client.http import HubSession
            from cairn.client.settings import client_settings

            settings = client_settings(endpoint=args.endpoint, token=args.token)
            session = stack.enter_context(HubSession(settings.endpoint, settings.token))
            resolvers.append(RemoteResolver(session))
            if source is None:
                source = open_remote_source(session, args.path)
        from cairn.client.governance import ChainResolver

        yield source, ChainResolver(resolvers)


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

    with open_root(args) as (source, resolver):
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
