"""``cairn pull REPO[@rev] [DIR]``: download a revision into the local cache (huggingface_hub's
layout) and optionally copy it into DIR; ``--verify`` checks its ``model.sig``.

Exit statuses: 0 pulled (and verified); 1 verification failed or, with ``--verify``, no signature;
2 error (missing repo or revision, bad token, a file that fails its hash, hub failure).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.commands.push import add_hub_options, progress_bar
from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, emit_error, human_size, table

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("pull", help="download a hub repository revision into the local cache")
    p.add_argument("repo", metavar="REPO[@rev]", help="org/name, optionally @branch, @tag or @commit")
    p.add_argument(
        "dir", metavar="DIR", nargs="?", help="also copy the files here (default: print the snapshot path)"
    )
    p.add_argument(
        "--include", action="append", default=[], metavar="GLOB", help="only files matching (repeatable)"
    )
    p.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip files matching (repeatable)"
    )
    p.add_argument(
        "--cache-dir", metavar="PATH", help="cache root (default: $HF_HUB_CACHE, else $HF_HOME/hub)"
    )
    p.add_argument(
        "--verify", action="store_true", help="verify the snapshot's model.sig (needs --key or --trust)"
    )
    p.add_argument(
        "--key", action="append", default=[], metavar="PUB.pem", help="publisher public key (repeatable)"
    )
    p.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="ROOT.pem",
        help="trusted root certificate (repeatable)",
    )
    add_hub_options(p)
    p.set_defaults(handler=_pull)


def _pull(args: argparse.Namespace) -> int:
    from cairn.client import client_settings, parse_repo_ref, pull
    from cairn.errors import UsageError

    verify = args.verify or bool(args.key or args.trust)
    if verify and not (args.key or args.trust):
        raise UsageError("--verify needs --key PUB.pem (a publisher's key) and/or --trust ROOT.pem")
    ref = parse_repo_ref(args.repo)
    settings = client_settings(endpoint=args.endpoint, token=args.token, cache_dir=args.cache_dir)
    result = pull(
        ref,
        endpoint=settings.endpoint,
        token=settings.token,
        cache_dir=settings.cache_dir,
        directory=Path(args.dir) if args.dir else None,
        include=args.include,
        exclude=args.exclude,
        progress=progress_bar(args, f"pull {ref}"),
    )
    data: dict[str, Any] = result.to_dict()
    status = EXIT_OK
    if verify:
        status, data["verification"] = _verify(result.directory, args)
        if data["verification"] is None:
            return status
    emit(data, as_json=args.json, human=_human)
    return status


def _verify(directory: Path, args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    from cairn.client import verify_snapshot
    from cairn.security.signing import VerificationError

    try:
        result = verify_snapshot(directory, keys=args.key, trusted=args.trust)
    except VerificationError as err:
        emit_error(err, as_json=args.json)
        return EXIT_NEGATIVE, None
    if result is None:
        return EXIT_NEGATIVE, {"verified": False, "reason": "no model.sig in the snapshot"}
    return (EXIT_OK if result.ok else EXIT_NEGATIVE), result.to_dict()


def _human(d: dict[str, Any]) -> str:
    lines = [f"{d['repo_id']}@{d['revision']} = commit {d['commit']}", f"directory: {d['directory']}"]
    rows = [(f["path"], human_size(f["size"]), f["status"]) for f in d["files"]]
    lines.append(table(["file", "size", "status"], rows))
    v = d.get("verification")
    if v is not None:
        if v.get("verified"):
            lines.append(f"signature: verified ({len(v.get('files', []))} files)")
        else:
            lines.append(f"signature: NOT verified {v.get('reason', '')}".rstrip())
            for label in ("changed", "added", "removed"):
                lines += [f"  {label}: {name}" for name in v.get(label, [])]
    return "\n".join(lines)
