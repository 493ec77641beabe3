"""``cairn push DIR REPO[@branch]``: upload a directory to a hub as one commit.

Exit statuses: 0 pushed (or nothing changed); 2 error (missing repo, bad token, conflict, hub failure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_OK, emit, human_size, table

__all__ = ["register"]


def add_hub_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint", metavar="URL", help="hub URL (default: $HF_ENDPOINT, else http://127.0.0.1:8000)"
    )
    p.add_argument("--token", metavar="T", help="access token (default: $HF_TOKEN, else $HF_HOME/token)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (no progress bar)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("push", help="upload a directory to a hub repository as one commit")
    p.add_argument("dir", metavar="DIR", help="the directory to upload (.git and .cache are skipped)")
    p.add_argument("repo", metavar="REPO[@branch]", help="org/name, optionally @branch (default main)")
    p.add_argument("--message", "-m", metavar="M", help="commit title")
    p.add_argument("--create", action="store_true", help="create the repository if it does not exist")
    p.add_argument("--private", action="store_true", help="with --create: make the new repository private")
    add_hub_options(p)
    p.set_defaults(handler=_push)


def progress_bar(args: argparse.Namespace, label: str) -> Any:
    from cairn.client import Bar

    if args.json or not sys.stderr.isatty():
        return None
    return Bar(sys.stderr, label)


def _push(args: argparse.Namespace) -> int:
    from cairn.client import client_settings, parse_repo_ref, push

    ref = parse_repo_ref(args.repo)
    settings = client_settings(endpoint=args.endpoint, token=args.token)
    result = push(
        Path(args.dir),
        ref,
        endpoint=settings.endpoint,
        token=settings.token,
        message=args.message,
        create=args.create,
        private=args.private,
        progress=progress_bar(args, f"push {ref}"),
    )
    emit(result.to_dict(), as_json=args.json, human=_human)
    return EXIT_OK


def _human(d: dict[str, Any]) -> str:
    head = (
        f"{d['repo_id']}@{d['revision']}: commit {d['commit']}"
        if d["committed"]
        else f"{d['repo_id']}@{d['revision']}: nothing changed (head {d['commit']})"
    )
    rows = [(f["path"], human_size(f["size"]), f["mode"], f["status"]) for f in d["files"]]
    return head + "\n" + table(["file", "size", "mode", "status"], rows)
