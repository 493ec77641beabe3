"""``cairn lineage PATH|REPO``: declared parents, whether the weights support them, and likely undeclared ones."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cairn.cli.commands.license import add_lineage_arguments, open_root
from cairn.cli.output import EXIT_ERROR, EXIT_NEGATIVE, EXIT_OK, emit, table
from cairn.errors import CairnError, LimitExceededError, NotFoundError, UsageError

__all__ = ["register"]


def _candidates(dirs: list[str], exclude: set[Path]) -> list[Path]:
    """Model directories among --candidates: each DIR itself if it holds safetensors, else its subdirectories."""
    out: list[Path] = []
    for d in dirs:
        p = Path(d).resolve()
        found = (
            [p]
            if any(p.glob("*.safetensors"))
            else sorted(q for q in p.rglob("*") if q.is_dir() and any(q.glob("*.safetensors")))
        )
        out += [q for q in found if q not in exclude and q not in out]
    return out


def _human(d: dict[str, Any]) -> str:
    rows = [
        (
            r["ref"],
            r["relation"],
            r.get("verdict", "-"),
            r.get("identical", "-"),
            r.get("similarity", "-"),
            r.get("error", ""),
        )
        for r in d["declared"]
    ]
    lines = [f"{d['path']}: {len(d['declared'])} declared parent(s)"]
    if rows:
        lines.append(table(["parent", "declared", "weights say", "identical", "similarity", "note"], rows))
    if d.get("hubSearch"):
        lines.append(f"hub search: {d['hubSearch']}")
    if d["undeclared"]:
        lines.append("likely undeclared parents:")
        lines += [
            f"  - {u['path']}: {u['verdict']} (identical {u['identical']}, similarity {u['similarity']})"
            for u in d["undeclared"]
        ]
    return "\n".join(lines)


def _lineage(args: argparse.Namespace) -> int:
    from cairn.governance.lineage import LocalSource

    with open_root(args) as (source, resolver):
        if not isinstance(source, LocalSource):
            return _hub_lineage(args, source)
        return _local_lineage(args, source, resolver)


def _hub_lineage(args: argparse.Namespace, source: Any) -> int:
    """The hub's verified lineage of a repo revision (computed from the fingerprints it stored on upload)."""
    data = source.session.json("GET", f"/api/models/{source.ref.repo_id}/lineage/{source.commit}")
    for row in data.get("undeclared", []):
        row.setdefault("path", row.get("repo"))
    data["path"] = str(source.ref)
    emit(data, as_json=args.json, human=_human)
    declared = data.get("declared", [])
    if any(r.get("supported") is None for r in declared):
        return EXIT_ERROR
    return EXIT_NEGATIVE if any(r.get("supported") is False for r in declared) else EXIT_OK


def _parent_fingerprint(parent: Any) -> Any:
    from cairn.governance.fingerprint import Fingerprint, fingerprint_model
    from cairn.governance.lineage import LocalSource

    if isinstance(parent, LocalSource):
        return fingerprint_model(parent.path)
    data = parent.session.json("GET", f"/api/models/{parent.ref.repo_id}/fingerprint/{parent.commit}")
    return Fingerprint.from_dict(data.get("tensors") or {})


def _local_lineage(args: argparse.Namespace, source: Any, resolver: Any) -> int:
    from cairn.governance.fingerprint import compare, fingerprint_model
    from cairn.governance.lineage import LocalSource, read_node

    mine = fingerprint_model(source.path)  # errors here (no weights, torch pickle) are exit 2
    node = read_node(source)
    declared, status, parents = [], EXIT_OK, {source.path}
    for edge in node.parents:
        row: dict[str, Any] = {"ref": edge.ref, "relation": edge.relation}
        try:
            parent = resolver.resolve(edge.ref, child=source)
            if isinstance(parent, LocalSource):
                parents.add(parent.path)
            cmp = compare(mine, _parent_fingerprint(parent))
            row.update(
                path=parent.ident,
                verdict=cmp.verdict,
                identical=cmp.identical,
                similarity=cmp.similarity,
                supported=cmp.supports_lineage,
            )
            if not cmp.supports_lineage and status == EXIT_OK:
                status = EXIT_NEGATIVE
        except CairnError as err:
            row.update(error=err.message, supported=None)
            status = EXIT_ERROR
        declared.append(row)
    undeclared = []
    for cand in _candidates(args.candidates, parents):
        try:
            cmp = compare(mine, fingerprint_model(cand))
        except CairnError:
            continue
        if cmp.supports_lineage:
            undeclared.append(
                {
                    "path": str(cand),
                    "verdict": cmp.verdict,
                    "identical": cmp.identical,
                    "similarity": cmp.similarity,
                }
            )
    out: dict[str, Any] = {"path": str(source.path), "declared": declared, "undeclared": undeclared}
    if args.search_hub:  # only on request: it sends the local model's fingerprint to the hub
        session = next((r.session for r in resolver.resolvers if hasattr(r, "session")), None)
        if session is None:
            raise UsageError("--search-hub needs a hub: pass --endpoint (or set HF_ENDPOINT)")
        out["hubSearch"] = _search_hub(session, mine, [e.ref for e in node.parents], undeclared)
    emit(out, as_json=args.json, human=_human)
    return status


def _search_hub(session: Any, mine: Any, exclude: list[str], undeclared: list[dict[str, Any]]) -> str:
    """Ask the hub for likely parents of ``mine`` (added to ``undeclared``); "ok", or why the search is
    unavailable: a hub that is not cairn (no such endpoint), one that refuses the fingerprint (too many
    tensors) or one whose answer is not a search result. These are notes, not failures of the command."""
    from cairn.client.errors import HubResponseError

    try:
        answer = session.json(
            "POST", "/api/cairn/lineage-search", json={"tensors": mine.to_dict(), "exclude": exclude}
        )
    except (NotFoundError, UsageError, LimitExceededError, HubResponseError) as err:
        return f"unavailable ({err.message})"
    found = answer.get("candidates") if isinstance(answer, dict) else None
    if not isinstance(found, list) or not all(_is_candidate(c) for c in found):
        return "unavailable (the hub's answer is not a lineage search result)"
    undeclared += [{"path": c["repo"], **c} for c in found]
    return "ok"


def _is_candidate(c: Any) -> bool:
    number = (int, float)
    return (
        isinstance(c, dict)
        and isinstance(c.get("repo"), str)
        and isinstance(c.get("verdict"), str)
        and isinstance(c.get("identical"), number)
        and isinstance(c.get("similarity"), number)
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lineage",
        help="check declared parents against the weights (exit 1: a claim the weights do not support)",
    )
    add_lineage_arguments(p)
    p.add_argument(
        "--candidates",
        action="append",
        default=[],
        metavar="DIR",
        help="model directories to search for undeclared parents (repeatable)",
    )
    p.add_argument(
        "--search-hub",
        action="store_true",
        help="for a model directory: also look for undeclared parents among the hub's models (sends "
        "the model's weight fingerprint, never the weights, to the --endpoint hub)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_lineage)
