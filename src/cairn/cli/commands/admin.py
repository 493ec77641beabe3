"""``cairn admin``: administer a hub's data directly (run where the server's data lives, or with the same
``--data``/``--db``/``--blobs``): create users, tokens and organisations, grant access to gated repos."""

from __future__ import annotations

import argparse
from typing import Any

from cairn.cli import trust_admin
from cairn.cli.commands.serve import add_storage_options, storage_urls
from cairn.cli.output import EXIT_OK, emit, human_size
from cairn.errors import UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("admin", help="administer a hub: users and tokens")
    sub = parser.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    create = sub.add_parser("create-user", help="create a user and print a write token for them")
    create.add_argument("name", help="user name (letters, digits, '.', '_', '-')")
    create.add_argument("--json", action="store_true", help='print {"user": ..., "token": ...}')
    add_storage_options(create)
    create.set_defaults(handler=create_user)
    token = sub.add_parser("create-token", help="create another token for an existing user")
    token.add_argument("name", help="user name")
    token.add_argument(
        "--role", choices=["read", "write"], default="write", help="token scope (default write)"
    )
    token.add_argument("--repo", action="append", default=[], metavar="NS/NAME", help="scope to a repo")
    token.add_argument("--org", action="append", default=[], metavar="NS", help="scope to a namespace")
    token.add_argument("--expires-in-days", type=int, help="expire after this many days")
    token.add_argument("--json", action="store_true", help='print {"user": ..., "token": ...}')
    add_storage_options(token)
    token.set_defaults(handler=create_token)
    revoke = sub.add_parser("revoke-token", help="revoke a token of a user (ids: `cairn token list`)")
    revoke.add_argument("name", help="user name")
    revoke.add_argument("id", type=int, help="token id")
    revoke.add_argument("--json", action="store_true", help="print the result as JSON")
    add_storage_options(revoke)
    revoke.set_defaults(handler=revoke_token)
    org = sub.add_parser("create-org", help="create an organisation whose members share its namespace")
    org.add_argument("name", help="organisation name")
    org.add_argument(
        "--member", action="append", default=[], metavar="USER", help="a write member (repeatable)"
    )
    org.add_argument("--admin", action="append", default=[], metavar="USER", help="an admin (repeatable)")
    org.add_argument("--json", action="store_true", help="print the result as JSON")
    add_storage_options(org)
    org.set_defaults(handler=create_org)
    grant = sub.add_parser("grant-access", help="let a user download the files of a gated repo")
    grant.add_argument("repo", help="NAMESPACE/NAME")
    grant.add_argument("user", help="user name")
    grant.add_argument("--type", choices=["model", "dataset", "space"], default="model", help="repo type")
    grant.add_argument("--json", action="store_true", help="print the result as JSON")
    add_storage_options(grant)
    grant.set_defaults(handler=grant_access)
    gc = sub.add_parser(
        "gc",
        help="delete blobs no commit references (deleted repos, uploads never committed)",
        description="Count the blobs that no commit of any repo references and that are older than the "
        "grace period; with --apply, delete them. Safe while the hub serves (see docs/hub.md).",
    )
    gc.add_argument("--apply", action="store_true", help="delete them (default: only report)")
    gc.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="leave blobs younger than this (default 24, at least 1)",
    )
    gc.add_argument(
        "--strays",
        action="store_true",
        help="with --apply, also delete stored objects that have no database row; ONLY with the hub stopped",
    )
    gc.add_argument("--json", action="store_true", help="print the report as JSON")
    add_storage_options(gc)
    gc.set_defaults(handler=collect_garbage)
    fps = sub.add_parser(
        "fingerprints",
        help="compute lineage fingerprints of weight files stored before the hub computed them",
        description="Count the blobs of committed weight files (.safetensors, .bin, .pt, .pth, .ckpt) "
        "that have no lineage fingerprint, so lineage search misses them; with --apply, compute and "
        "store them. Idempotent, and safe while the hub serves (see docs/hub.md).",
    )
    fps.add_argument("--apply", action="store_true", help="compute and store them (default: only report)")
    fps.add_argument("--json", action="store_true", help="print the report as JSON")
    add_storage_options(fps)
    fps.set_defaults(handler=backfill_fingerprints)
    trust_admin.add_admin_actions(sub, add_storage_options)


def _open(args: argparse.Namespace) -> Any:
    from cairn.registry import Registry

    db, blobs = storage_urls(args)
    return Registry.open(db, blobs)


def create_user(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        registry.users.create_user(args.name)
        token = registry.users.create_token(args.name, role="write", name="admin-cli")
    finally:
        registry.close()
    emit({"user": args.name, "token": token}, as_json=args.json, human=lambda d: d["token"])
    return EXIT_OK


def create_token(args: argparse.Namespace) -> int:
    from cairn.meta import now_us
    from cairn.registry.models import TokenScope

    registry = _open(args)
    try:
        scopes = tuple(TokenScope("repo", r, args.role) for r in args.repo) + tuple(
            TokenScope("org", o, args.role) for o in args.org
        )
        days = args.expires_in_days
        if days is not None and days < 1:
            raise UsageError("--expires-in-days must be at least 1")
        expires = None if days is None else now_us() + days * 86_400_000_000
        token = registry.users.create_token(
            args.name, role=args.role, name="admin-cli", scopes=scopes, expires_at=expires
        )
    finally:
        registry.close()
    emit({"user": args.name, "token": token}, as_json=args.json, human=lambda d: d["token"])
    return EXIT_OK


def create_org(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        registry.users.create_org(args.name, list(args.member), admins=list(args.admin))
    finally:
        registry.close()
    emit(
        {"org": args.name, "members": list(args.member), **({"admins": args.admin} if args.admin else {})},
        as_json=args.json,
        human=lambda d: (
            f"organisation {d['org']} created with members: {', '.join(d['members'] + d.get('admins', [])) or '(none)'}"
        ),
    )
    return EXIT_OK


def grant_access(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        namespace, _, name = args.repo.partition("/")
        repo = registry.repos.get(args.type, namespace, name, None, admin=True)
        registry.repos.grant_access(repo, args.user)
    finally:
        registry.close()
    emit(
        {"repo": args.repo, "user": args.user, "granted": True},
        as_json=args.json,
        human=lambda d: f"{d['user']} may now download files of {d['repo']}",
    )
    return EXIT_OK


def revoke_token(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        info = registry.users.revoke_token(args.name, args.id, by="admin-cli")
    finally:
        registry.close()
    emit(
        {"user": args.name, "id": info.id, "name": info.name, "revoked": True},
        as_json=args.json,
        human=lambda d: f"token {d['id']} ({d['name']}) of {d['user']} revoked",
    )
    return EXIT_OK


def collect_garbage(args: argparse.Namespace) -> int:
    if args.strays and not args.apply:
        raise UsageError("--strays deletes, so it needs --apply")
    registry = _open(args)
    try:
        report = registry.collect_garbage(
            grace_s=int(args.grace_hours * 3600), apply=args.apply, strays=args.strays
        )
    finally:
        registry.close()

    def human(d: dict[str, Any]) -> str:
        verb = "would delete" if d["dryRun"] else "deleted"
        lines = [f"{verb} {d['blobs']} unreferenced blobs ({human_size(d['bytes'])})"]
        if d["strayObjects"]:
            what = (
                "deleted"
                if args.strays and args.apply
                else "found (delete with --apply --strays, hub stopped)"
            )
            lines.append(
                f"{what} {d['strayObjects']} stored objects without a row ({human_size(d['strayBytes'])})"
            )
        if d["keptRacing"]:
            lines.append(f"kept {d['keptRacing']} that a commit referenced meanwhile")
        if d["stagingEntries"]:
            lines.append(
                f"{verb} {d['stagingEntries']} abandoned staging files and multipart uploads"
                f" ({human_size(d['stagingBytes'])})"
            )
        if d["dryRun"] and (d["blobs"] or d["stagingEntries"]):
            lines.append("run again with --apply to delete them")
        return "\n".join(lines)

    emit(report.to_dict(), as_json=args.json, human=human)
    return EXIT_OK


def backfill_fingerprints(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        report = registry.backfill_fingerprints(apply=args.apply)
    finally:
        registry.close()

    def human(d: dict[str, Any]) -> str:
        verb = "would fingerprint" if d["dryRun"] else "fingerprinted"
        lines = [
            f"{d['candidates']} weight files' blobs have no fingerprint",
            f"{verb} {d['fingerprinted']} ({human_size(d['bytes'])})",
        ]
        if d["notFingerprintable"]:
            lines.append(f"{d['notFingerprintable']} hold no weights cairn can fingerprint")
        if d["unreadable"]:
            lines.append(f"{d['unreadable']} could not be read:")
            lines += [f"  {e['sha256']}: {e['error']}" for e in d["errors"]]
        if d["dryRun"] and d["fingerprinted"]:
            lines.append("run again with --apply to compute them")
        return "\n".join(lines)

    emit(report.to_dict(), as_json=args.json, human=human)
    return EXIT_OK
