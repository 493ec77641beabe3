"""CLI pieces for trust on upload, shared by ``cairn serve`` (the server's policy options) and
``cairn admin`` (list and release quarantined files). Configuration is read here, once, with this
precedence: flag, environment (``CAIRN_UNSAFE_FILES``), default (``reject``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit
from cairn.errors import UsageError

__all__ = ["add_admin_actions", "add_trust_options", "trust_policy"]


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("trust on upload")
    group.add_argument(
        "--unsafe-files",
        choices=["reject", "quarantine", "warn"],
        help="what happens to uploaded files the scan finds unsafe: reject the commit, accept it and "
        "refuse downloads until an admin releases them, or only warn (env CAIRN_UNSAFE_FILES; default reject)",
    )
    group.add_argument(
        "--block-severity",
        default="critical",
        choices=["info", "low", "medium", "high", "critical"],
        help="findings at or above this severity make a file unsafe (default critical)",
    )
    group.add_argument(
        "--block-unscannable",
        action="store_true",
        help="treat files the scanner could not analyse like unsafe ones (default: accept, shown as error)",
    )
    group.add_argument("--no-scan", action="store_true", help="do not scan uploads (files show as unscanned)")
    group.add_argument(
        "--trusted-key",
        action="append",
        default=[],
        metavar="PEM",
        help="a public key file whose model.sig signatures every repo trusts (repeatable)",
    )
    group.add_argument(
        "--license-enforcement",
        choices=["block", "warn", "audit"],
        default="warn",
        help="what a license-policy violation found by the per-commit license check does (default warn)",
    )
    group.add_argument(
        "--hub-admin",
        action="append",
        default=[],
        metavar="USER",
        help="a user who may release quarantined files through the API (repeatable)",
    )


def trust_policy(args: argparse.Namespace) -> Any:
    from cairn.governance.policy import LicensePolicy
    from cairn.registry.trust import TrustPolicy

    keys = []
    for path in args.trusted_key:
        try:
            keys.append(Path(path).read_text())
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read trusted key {path}: {err}") from None
    on_unsafe: Any = args.unsafe_files or os.environ.get("CAIRN_UNSAFE_FILES") or "reject"
    return TrustPolicy(
        on_unsafe=on_unsafe,
        block_severity=args.block_severity,
        scan=not args.no_scan,
        trusted_keys=tuple(keys),
        admins=tuple(args.hub_admin),
        block_unscannable=args.block_unscannable,
        license_policy=LicensePolicy(enforcement=args.license_enforcement),
    )


def add_admin_actions(sub: Any, storage: Any) -> None:
    """``cairn admin security REPO``, ``cairn admin release REPO SHA256``, ``cairn admin signatures NS``."""
    show = sub.add_parser("security", help="show the scan status of every file of a repo revision")
    show.add_argument("repo", help="NAMESPACE/NAME")
    show.add_argument("--revision", default="main", help="branch, tag or commit (default main)")
    show.add_argument("--type", choices=["model", "dataset", "space"], default="model", help="repo type")
    show.add_argument("--json", action="store_true", help="print the result as JSON")
    storage(show)
    show.set_defaults(handler=security)
    rel = sub.add_parser("release", help="let downloads of a quarantined file (by sha256) through")
    rel.add_argument("repo", help="NAMESPACE/NAME")
    rel.add_argument("sha256", help="the file's sha256 (see `cairn admin security`)")
    rel.add_argument("--reason", default="", help="why it is safe, recorded with the release")
    rel.add_argument("--revoke", action="store_true", help="quarantine it again instead")
    rel.add_argument("--type", choices=["model", "dataset", "space"], default="model", help="repo type")
    rel.add_argument("--json", action="store_true", help="print the result as JSON")
    storage(rel)
    rel.set_defaults(handler=release)
    req = sub.add_parser(
        "signatures", help="require signed commits (model.sig by a trusted key) in every repo of a namespace"
    )
    req.add_argument("namespace", help="a user or organisation name")
    req.add_argument("--require", action=argparse.BooleanOptionalAction, default=None, help="require or not")
    req.add_argument("--key", action="append", default=None, metavar="PEM", help="a trusted public key file")
    req.add_argument("--json", action="store_true", help="print the result as JSON")
    storage(req)
    req.set_defaults(handler=signatures)


def _open(args: argparse.Namespace) -> Any:
    from cairn.cli.commands.serve import storage_urls
    from cairn.registry import Registry

    db, blobs = storage_urls(args)
    return Registry.open(db, blobs)


def security(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        namespace, _, name = args.repo.partition("/")
        repo = registry.repos.get(args.type, namespace, name, None, admin=True)
        commit, _ = registry.commits.resolve(repo, args.revision)
        status = registry.trust.file_status(registry.commits.files(commit))
    finally:
        registry.close()
    files = [
        {
            "path": p,
            "sha256": None if f is None else f.sha256,
            "status": v,
            "severity": None if f is None else f.severity,
        }
        for p, (v, f) in status.items()
    ]
    emit(
        {"repo": args.repo, "sha": commit, "files": files},
        as_json=args.json,
        human=lambda d: "\n".join(
            f"{f['status']:<9} {f['severity'] or '-':<8} {f['path']}" for f in d["files"]
        ),
    )
    return EXIT_NEGATIVE if any(f["status"] in {"unsafe", "error"} for f in files) else EXIT_OK


def release(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        namespace, _, name = args.repo.partition("/")
        repo = registry.repos.get(args.type, namespace, name, None, admin=True)
        if args.revoke:
            registry.trust.revoke(repo, args.sha256)
        else:
            registry.trust.release(repo, args.sha256, by="admin-cli", reason=args.reason)
    finally:
        registry.close()
    emit(
        {"repo": args.repo, "sha256": args.sha256, "released": not args.revoke},
        as_json=args.json,
        human=lambda d: (
            f"{d['sha256']} in {d['repo']} is {'released' if d['released'] else 'quarantined again'}"
        ),
    )
    return EXIT_OK


def signatures(args: argparse.Namespace) -> int:
    """Show, or with ``--require``/``--key`` change, a namespace's signature requirement."""
    from cairn.registry.trust import RepoTrustSettings

    keys = None
    if args.key is not None:
        try:
            keys = tuple(Path(k).read_text() for k in args.key)
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read key: {err}") from None
    registry = _open(args)
    try:
        current = registry.trust.namespace_settings(args.namespace)
        if args.require is not None or keys is not None:
            new = RepoTrustSettings(
                current.require_signature if args.require is None else args.require,
                current.trusted_keys if keys is None else keys,
            )
            current = registry.trust.set_namespace_settings(args.namespace, new)
    finally:
        registry.close()
    emit(
        {
            "namespace": args.namespace,
            "requireSignature": current.require_signature,
            "trustedKeys": len(current.trusted_keys),
        },
        as_json=args.json,
        human=lambda d: (
            f"{d['namespace']}: signatures {'required' if d['requireSignature'] else 'not required'}, "
            f"{d['trustedKeys']} trusted key(s)"
        ),
    )
    return EXIT_OK
