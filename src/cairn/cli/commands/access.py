"""``cairn org``, ``cairn access`` and ``cairn token``: organisations, gated-repo access requests, the
audit log and fine-grained tokens, managed over a running hub's HTTP API (``--endpoint``/``HF_ENDPOINT``
and ``--token``/``HF_TOKEN``), as the owner or a member would, not as the operator (that is
``cairn admin``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from cairn.cli.hubapi import add_hub_options, client_from_args, repo_path
from cairn.cli.output import EXIT_OK, emit, table

__all__ = ["register"]

_TYPES = ["model", "dataset", "space"]


def _add(sub: Any, name: str, help_: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    parser = sub.add_parser(name, help=help_)
    add_hub_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def _repo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo", help="NAMESPACE/NAME")
    parser.add_argument("--type", choices=_TYPES, default="model", help="repo type (default model)")


def _page_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=50, help="events per page (1-1000, default 50)")
    parser.add_argument("--before", type=int, default=0, help="only events older than this event id")


def register(subparsers: Any) -> None:
    org = subparsers.add_parser("org", help="organisations on a hub: members, roles, audit log")
    osub = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    p = _add(osub, "create", "create an organisation (you become its admin)", org_create)
    p.add_argument("name")
    p = _add(osub, "members", "list the members of an organisation and their roles", org_members)
    p.add_argument("org")
    p = _add(osub, "add", "add a member, or change a member's role", org_add)
    p.add_argument("org")
    p.add_argument("user")
    p.add_argument("--role", choices=["read", "write", "admin"], default="write", help="default write")
    p = _add(osub, "remove", "remove a member", org_remove)
    p.add_argument("org")
    p.add_argument("user")
    p = _add(osub, "audit", "the organisation's audit log, newest first", org_audit)
    p.add_argument("org")
    _page_args(p)

    access = subparsers.add_parser("access", help="gated repos: access requests and the audit log")
    asub = access.add_subparsers(dest="access_command", metavar="ACTION", required=True)
    p = _add(asub, "request", "ask for access to a gated repo", access_request)
    _repo_args(p)
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE", help="a form field")
    p = _add(asub, "list", "list access requests of a gated repo you administer", access_list)
    _repo_args(p)
    p.add_argument("--status", choices=["pending", "accepted", "rejected"], default="pending")
    for verb, status in (("accept", "accepted"), ("reject", "rejected"), ("reset", "pending")):
        p = _add(asub, verb, f"set a user's request to {status}", access_handle)
        _repo_args(p)
        p.add_argument("user")
        p.set_defaults(status=status)
        if verb == "reject":
            p.add_argument("--reason", help="told to the user")
    p = _add(asub, "grant", "give a user access without a request", access_grant)
    _repo_args(p)
    p.add_argument("user")
    p = _add(asub, "audit", "the repo's audit log, newest first", repo_audit)
    _repo_args(p)
    _page_args(p)

    token = subparsers.add_parser("token", help="your access tokens on a hub: create, list, revoke")
    tsub = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    p = _add(tsub, "create", "create a token (fine-grained with --repo/--org)", token_create)
    p.add_argument("name", help="a name to recognise the token by")
    p.add_argument("--role", choices=["read", "write"], default="read", help="default read")
    p.add_argument("--repo", action="append", default=[], metavar="NS/NAME", help="scope to a repo")
    p.add_argument("--org", action="append", default=[], metavar="NS", help="scope to a namespace")
    p.add_argument("--repo-type", choices=_TYPES, default="model", help="type of the --repo scopes")
    p.add_argument("--expires-in-days", type=int, help="expire after this many days")
    _add(tsub, "list", "list your tokens (never their secrets)", token_list)
    p = _add(tsub, "revoke", "revoke one of your tokens", token_revoke)
    p.add_argument("id", type=int, help="the token id (see `cairn token list`)")


def _q(value: str) -> str:
    return quote(value, safe="")


# -- org -------------------------------------------------------------------------------------------------
def org_create(args: argparse.Namespace) -> int:
    data = client_from_args(args).call("POST", "/api/cairn/orgs", {"name": args.name})
    emit(data, as_json=args.json, human=lambda d: f"organisation {d['name']} created; you are its admin")
    return EXIT_OK


def org_members(args: argparse.Namespace) -> int:
    data = client_from_args(args).call("GET", f"/api/cairn/orgs/{_q(args.org)}/members")
    emit(
        data, as_json=args.json, human=lambda d: table(["USER", "ROLE"], [[m["user"], m["role"]] for m in d])
    )
    return EXIT_OK


def org_add(args: argparse.Namespace) -> int:
    path = f"/api/cairn/orgs/{_q(args.org)}/members/{_q(args.user)}"
    data = client_from_args(args).call("PUT", path, {"role": args.role})
    emit(data, as_json=args.json, human=lambda d: f"{d['user']} is now {d['role']} in {args.org}")
    return EXIT_OK


def org_remove(args: argparse.Namespace) -> int:
    client_from_args(args).call("DELETE", f"/api/cairn/orgs/{_q(args.org)}/members/{_q(args.user)}")
    emit(
        {"org": args.org, "removed": args.user}, as_json=args.json, human=lambda d: f"removed {d['removed']}"
    )
    return EXIT_OK


def _events(args: argparse.Namespace, path: str) -> int:
    query = {"limit": args.limit, **({"before": args.before} if args.before else {})}
    events = client_from_args(args).call("GET", f"{path}?{urlencode(query)}")
    data = {"events": events, "next_before": events[-1]["id"] if len(events) == args.limit else None}
    emit(
        data,
        as_json=args.json,
        human=lambda d: table(
            ["ID", "TIME", "ACTOR", "ACTION", "REPO", "TARGET"],
            [
                [e["id"], e["time"], e["actor"] or "-", e["action"], e["repo"] or "-", e["target"] or "-"]
                for e in d["events"]
            ],
        ),
    )
    return EXIT_OK


def org_audit(args: argparse.Namespace) -> int:
    return _events(args, f"/api/cairn/orgs/{_q(args.org)}/audit")


def repo_audit(args: argparse.Namespace) -> int:
    return _events(args, repo_path(args.type, args.repo) + "/audit")


# -- access requests -------------------------------------------------------------------------------------
def access_request(args: argparse.Namespace) -> int:
    fields = dict(f.partition("=")[::2] for f in args.field)
    data = client_from_args(args).call(
        "POST", repo_path(args.type, args.repo) + "/ask-access", {"fields": fields}
    )
    emit(data, as_json=args.json, human=lambda d: f"access request to {args.repo}: {d['status']}")
    return EXIT_OK


def access_list(args: argparse.Namespace) -> int:
    path = repo_path(args.type, args.repo) + f"/user-access-request/{args.status}"
    data = client_from_args(args).call("GET", path)
    emit(
        data,
        as_json=args.json,
        human=lambda d: table(
            ["USER", "STATUS", "REQUESTED", "DECIDED BY"],
            [[r["user"]["user"], r["status"], r["timestamp"], r["decidedBy"] or "-"] for r in d],
        ),
    )
    return EXIT_OK


def access_handle(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"user": args.user, "status": args.status}
    if getattr(args, "reason", None):
        body["rejectionReason"] = args.reason
    client_from_args(args).call("POST", repo_path(args.type, args.repo) + "/user-access-request/handle", body)
    result = {"repo": args.repo, "user": args.user, "status": args.status}
    emit(result, as_json=args.json, human=lambda d: f"{d['user']}: {d['status']}")
    return EXIT_OK


def access_grant(args: argparse.Namespace) -> int:
    path = repo_path(args.type, args.repo) + "/user-access-request/grant"
    client_from_args(args).call("POST", path, {"user": args.user})
    result = {"repo": args.repo, "user": args.user, "status": "accepted"}
    emit(result, as_json=args.json, human=lambda d: f"{d['user']} may now download files of {d['repo']}")
    return EXIT_OK


# -- tokens ----------------------------------------------------------------------------------------------
def token_create(args: argparse.Namespace) -> int:
    scopes = [{"kind": "repo", "name": r, "permission": args.role, "type": args.repo_type} for r in args.repo]
    scopes += [{"kind": "org", "name": o, "permission": args.role} for o in args.org]
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if scopes:
        body["scopes"] = scopes
    if args.expires_in_days is not None:
        body["expiresInDays"] = args.expires_in_days
    data = client_from_args(args).call("POST", "/api/cairn/tokens", body)
    emit(data, as_json=args.json, human=lambda d: d["token"])
    return EXIT_OK


def token_list(args: argparse.Namespace) -> int:
    data = client_from_args(args).call("GET", "/api/cairn/tokens")

    def human(d: list[dict[str, Any]]) -> str:
        rows = [
            [
                t["id"],
                t["displayName"],
                t["role"],
                "revoked" if t["revoked"] else (t["expiresAt"] or "never"),
                t["lastUsedAt"] or "-",
                ", ".join(f"{s['name']}:{s['permission']}" for s in t["scopes"]) or "(account)",
            ]
            for t in d
        ]
        return table(["ID", "NAME", "ROLE", "EXPIRES", "LAST USED", "SCOPES"], rows)

    emit(data, as_json=args.json, human=human)
    return EXIT_OK


def token_revoke(args: argparse.Namespace) -> int:
    data = client_from_args(args).call("DELETE", f"/api/cairn/tokens/{args.id}")
    emit(data, as_json=args.json, human=lambda d: f"token {d['id']} ({d['displayName']}) revoked")
    return EXIT_OK
