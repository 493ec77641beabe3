"""``cairn card DIR|REPO``: write, print or push a model card; ``cairn card DIR|REPO --check``: validate one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cairn.checkpoint.api import attach
from cairn.cli.commands.license import add_lineage_arguments, open_root
from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit
from cairn.errors import NotFoundError, UsageError
from cairn.format.manifest import MANIFEST_NAME
from cairn.security.report import Severity

__all__ = ["register"]


def _check(card: Any, where: str, as_json: bool) -> int:
    from cairn.governance.card import validate_card

    if card is None:
        raise NotFoundError(f"{where} has no README.md")
    issues = validate_card(card)
    data = {
        "path": f"{where}/README.md",
        "valid": not issues,
        "issues": [{"line": i.line, "field": i.field, "message": i.message} for i in issues],
    }

    def human(d: dict[str, Any]) -> str:
        if d["valid"]:
            return f"{d['path']}: no problems found"
        return "\n".join(f"{d['path']}:{i['line'] or '?'}: {i['field']}: {i['message']}" for i in d["issues"])

    emit(data, as_json=as_json, human=human)
    return EXIT_NEGATIVE if issues else EXIT_OK


def _existing(source: Any) -> Any:
    """The source's current card (a hub repo's README read through the API), or None."""
    from cairn.governance.card import parse_card, read_card
    from cairn.governance.lineage import LocalSource

    if isinstance(source, LocalSource):
        return read_card(source.path)
    text = source.read_text("README.md")
    return None if text is None else parse_card(text, path=f"{source.ident}/README.md")


def _push(source: Any, text: str) -> dict[str, Any]:
    """Commit README.md to the repo's branch (HF commit API), on top of the commit it was built from."""
    import base64
    import json

    from cairn.client.http import quote_rev

    branch = source.ref.revision or "main"
    header = {"summary": "Update model card (cairn card)", "description": "", "parentCommit": source.commit}
    file = {"path": "README.md", "content": base64.b64encode(text.encode()).decode(), "encoding": "base64"}
    body = b"".join(
        json.dumps(line).encode() + b"\n"
        for line in ({"key": "header", "value": header}, {"key": "file", "value": file})
    )
    answer = source.session.json(
        "POST",
        f"/api/models/{source.ref.repo_id}/commit/{quote_rev(branch)}",
        content=body,
        headers={"content-type": "application/x-ndjson"},
    )
    return {"repo": source.ref.repo_id, "branch": branch, "commit": (answer or {}).get("commitOid")}


def _card(args: argparse.Namespace) -> int:
    from cairn.governance.card import write_card
    from cairn.governance.cardgen import build_card
    from cairn.governance.check import check_lineage
    from cairn.governance.lineage import LocalSource, walk

    with open_root(args) as (source, resolver):
        local = isinstance(source, LocalSource)
        if args.check:
            return _check(_existing(source), source.ident, args.json)
        if args.push and local:
            raise UsageError("--push commits to a hub repo; for a directory, cairn card writes README.md")
        existing = _existing(source)
        graph = walk(source, resolver)
        update = build_card(source, graph, check_lineage(graph), existing, trust=_trust(args, source))
        if args.push:
            data = _push(source, update.text)
            emit(data, as_json=args.json, human=lambda d: f"committed README.md to {d['repo']}@{d['branch']}")
            return EXIT_OK
        if args.dry_run or not local:
            sys.stdout.write(update.text)
            return EXIT_OK
    target = write_card(source.path, update.metadata, update.body)
    if (Path(source.path) / MANIFEST_NAME).is_file():  # a cairn checkpoint lists every file it holds
        attach(source.path, [target.name])
    data = {"path": str(target), "changed_fields": list(update.changed_fields)}
    emit(data, as_json=args.json, human=lambda d: f"wrote {d['path']}")
    return EXIT_OK


def _trust(args: argparse.Namespace, source: Any) -> Any:
    """The scan verdict per file and the signature status: a local scan of a directory (nothing in it
    is executed), or the hub's own trust record of the commit for a REPO."""
    from cairn.governance.cardgen import TrustStatus
    from cairn.governance.lineage import LocalSource

    if not isinstance(source, LocalSource):
        rec = source.session.json("GET", f"/api/models/{source.ref.repo_id}/security/{source.commit}")
        files = tuple(
            (str(f.get("path")), str(f.get("status")), str(f.get("severity") or ""))
            for f in rec.get("files", [])
            if isinstance(f, dict) and str(f.get("path")) != "README.md"
        )
        sig = rec.get("signature") or {}
        text = str(sig.get("status", "none"))
        if sig.get("signer"):
            text += f" (signer: {sig['signer']})"
        if sig.get("reason"):
            text += f" ({sig['reason']})"
        return TrustStatus(files, text, f"From the hub's trust record of commit {source.commit[:12]}")
    if args.no_scan:
        return None
    from cairn.security import scan

    names = [n for n in source.list_files() if n != "README.md"]
    report = scan([source.path / n for n in names])
    worst: dict[str, Severity] = {}
    for f in report.findings:
        name = Path(f.path).name
        worst[name] = max(worst.get(name, f.severity), f.severity)
    notes = {Path(s.path).name: ("skipped", "not a model format") for s in report.skipped}
    notes.update({Path(e.path).name: ("error", e.message[:100]) for e in report.errors})
    rows = []
    for n in names:
        if n in worst:  # the default block severity of the hub's policy (critical) marks "unsafe"
            verdict = "unsafe" if worst[n] >= Severity.CRITICAL else "caution"
            rows.append((n, verdict, str(worst[n])))
        else:
            rows.append((n, *notes.get(n, ("safe", ""))))
    signed = "model.sig" in names
    sig = "a model.sig is present; check it with `cairn verify`" if signed else "none (unsigned)"
    return TrustStatus(tuple(rows), sig, "From a local scan by cairn (nothing was executed)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("card", help="write, update or validate a model card (README.md)")
    add_lineage_arguments(p)
    p.add_argument("--check", action="store_true", help="validate the card; exit 1 when it has problems")
    p.add_argument("--dry-run", action="store_true", help="print the updated README instead of writing it")
    p.add_argument("--push", action="store_true", help="for a REPO: commit the generated card as README.md")
    p.add_argument(
        "--no-scan",
        action="store_true",
        help="for a directory: leave the security scan out of the card's trust section",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_card)
