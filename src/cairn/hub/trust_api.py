"""Trust and discovery routes, and the trust fields added to the Hugging Face metadata routes.

HF-shaped: ``securityRepoStatus`` and ``safetensors`` in ``model_info``, ``securityFileStatus`` on tree
entries with ``expand=true``, likes (``POST``/``DELETE .../like``, ``GET .../likers``,
``GET /api/users/{user}/likes``). cairn's own JSON API:

- ``GET  /api/{type}s/{repo}/security[/{rev}]``: per-file verdicts and findings, the signature record;
- ``GET|PUT /api/{type}s/{repo}/trust``: the repo's signature requirement and trusted keys (owners);
- ``POST /api/{type}s/{repo}/quarantine``: ``{"sha256": ..., "release": true|false}`` (hub admins);
- ``GET  /api/models/{repo}/lineage[/{rev}]``: verified lineage (declared and undeclared parents);
- ``GET  /api/models/{repo}/fingerprint[/{rev}]``: the revision's weight fingerprint;
- ``POST /api/cairn/lineage-search``: likely parents on this hub of a posted fingerprint.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from cairn.errors import PermissionDeniedError, UsageError
from cairn.governance.fingerprint import MAX_TENSORS
from cairn.hub.context import Ctx
from cairn.hub.download import resolve_revision
from cairn.registry import FileEntry
from cairn.registry.scanning import Inspection
from cairn.registry.trust import RepoTrustSettings

__all__ = [
    "REPO_OPS",
    "file_security",
    "fingerprint",
    "info_fields",
    "like",
    "likers",
    "lineage",
    "lineage_search",
    "quarantine",
    "security",
    "trust_settings",
    "unlike",
    "user_likes",
]


MAX_SEARCH_TENSORS = MAX_TENSORS  # a lineage search compares every candidate tensor by tensor


def _iso(us: int) -> str:
    from cairn.hub.info import iso

    return iso(us)


def file_security(verdict: str, found: Inspection | None) -> dict[str, Any]:
    """The Hub's ``securityFileStatus`` shape (all three keys present) for one file."""
    imports = []
    if found is not None:
        for f in found.findings:
            imports.append(
                {"module": f.get("construct", ""), "name": f.get("rule", ""), "safety": "dangerous"}
            )
    levels = {"safe": "innocuous", "caution": "suspicious", "unsafe": "dangerous"}
    return {
        "status": verdict,
        "avScan": {"virusFound": False, "virusNames": None},
        "pickleImportScan": {"highestSafetyLevel": levels.get(verdict), "imports": imports},
    }


async def info_fields(ctx: Ctx, commit: str, entries: list[FileEntry]) -> dict[str, Any]:
    """``safetensors``, ``signature`` and (with ``securityStatus=true``) ``securityRepoStatus``."""
    reg = ctx.registry
    record = await ctx.call(reg.trust.revision, commit) or {}
    out: dict[str, Any] = {}
    if record.get("safetensors"):
        out["safetensors"] = record["safetensors"]
    out["signature"] = record.get("signature") or {"status": "none", "reason": "no trust record"}
    if record.get("licenseCheck"):
        out["licenseCheck"] = record["licenseCheck"]
    expand = ctx.qlist("expand")
    if ctx.qbool("securityStatus") or "securityRepoStatus" in expand:
        status = await ctx.call(reg.trust.file_status, entries)
        issues = [
            {"path": path, "level": verdict, "severity": None if found is None else found.severity}
            for path, (verdict, found) in status.items()
            if verdict != "safe"
        ]
        out["securityRepoStatus"] = {
            "scansDone": all(v != "unscanned" for v, _ in status.values()),
            "filesWithIssues": issues,
        }
    return out


async def security(ctx: Ctx) -> Response:
    """cairn's full per-file security report of a revision (file-level data: gated like the tree)."""
    repo = await ctx.repo(content=True)
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest or ["main"], min_rest=0)
    entries = await ctx.call(ctx.registry.commits.files, commit)
    status = await ctx.call(ctx.registry.trust.file_status, entries)
    record = await ctx.call(ctx.registry.trust.revision, commit) or {}
    files = []
    for e in entries:
        verdict, found = status[e.path]
        files.append(
            {
                "path": e.path,
                "sha256": e.sha256,
                "status": verdict,
                "severity": None if found is None else found.severity,
                "findings": [] if found is None else found.findings,
                "errors": [] if found is None else found.report.get("errors", []),
            }
        )
    return JSONResponse(
        {
            "sha": commit,
            "policy": ctx.registry.trust.policy.on_unsafe,
            "files": files,
            "signature": record.get("signature"),
            "safetensors": record.get("safetensors"),
            "licenseCheck": record.get("licenseCheck"),
        }
    )


def _settings_json(s: RepoTrustSettings) -> dict[str, Any]:
    return {"requireSignature": s.require_signature, "trustedKeys": list(s.trusted_keys)}


async def trust_settings(ctx: Ctx) -> Response:
    if ctx.request.method == "GET":
        repo = await ctx.repo()
        return JSONResponse(_settings_json(await ctx.call(ctx.registry.trust.settings, repo)))
    repo = await ctx.repo(write=True)
    data = await ctx.json()
    current = await ctx.call(ctx.registry.trust.settings, repo)
    require = data.get("requireSignature", current.require_signature)
    keys = data.get("trustedKeys", list(current.trusted_keys))
    if not isinstance(require, bool):
        raise UsageError("'requireSignature' must be a boolean")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise UsageError("'trustedKeys' must be a list of PEM strings")
    new = RepoTrustSettings(require, tuple(keys))
    return JSONResponse(_settings_json(await ctx.call(ctx.registry.trust.set_settings, repo, new)))


async def quarantine(ctx: Ctx) -> Response:
    who = ctx.require_user()
    repo = await ctx.repo()
    if who.user.name not in ctx.registry.trust.policy.admins:
        raise PermissionDeniedError("only hub administrators may release quarantined files")
    data = await ctx.json()
    sha256, release = data.get("sha256"), data.get("release", True)
    if not isinstance(sha256, str) or len(sha256) != 64 or not isinstance(release, bool):
        raise UsageError('quarantine needs {"sha256": <64 hex>, "release": bool}')
    if release:
        reason = data.get("reason", "")
        await ctx.call(ctx.registry.trust.release, repo, sha256, by=who.user.name, reason=str(reason))
    else:
        await ctx.call(ctx.registry.trust.revoke, repo, sha256)
    return JSONResponse({"sha256": sha256, "released": release})


async def like(ctx: Ctx) -> Response:
    who = ctx.require_user()
    repo = await ctx.repo()
    await ctx.call(ctx.registry.discovery.like, repo, who)
    return JSONResponse({})


async def unlike(ctx: Ctx) -> Response:
    who = ctx.require_user()
    repo = await ctx.repo()
    await ctx.call(ctx.registry.discovery.unlike, repo, who)
    return JSONResponse({})


async def likers(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    found = await ctx.call(ctx.registry.discovery.likers, repo)
    return JSONResponse([{"user": x.user, "fullname": x.fullname, "avatarUrl": None} for x in found])


async def user_likes(ctx: Ctx) -> Response:
    from cairn.registry.repos import can_see

    found = await ctx.call(ctx.registry.discovery.liked_by, ctx.params["user"])
    out = [
        {"createdAt": _iso(when), "repo": {"name": r.repo_id, "type": r.type}}
        for r, when in found
        if can_see(r, ctx.principal)
    ]
    return JSONResponse(out)


async def lineage(ctx: Ctx) -> Response:
    """Verified lineage of a revision: declared parents with what the weights say, and undeclared likely
    parents among the models the caller may read (weights-derived data: gated like the tree)."""
    repo = await ctx.repo(content=True)
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest or ["main"], min_rest=0)
    reg = ctx.registry
    return JSONResponse(await ctx.call(reg.lineage.verify, reg, repo, commit, ctx.principal))


async def fingerprint(ctx: Ctx) -> Response:
    """The merged weight fingerprint of a revision (per-tensor sha256 and sketch), so that a client can
    compare a local model with it without downloading the weights."""
    repo = await ctx.repo(content=True)
    commit, _, _ = await resolve_revision(ctx, repo, ctx.rest or ["main"], min_rest=0)
    entries = await ctx.call(ctx.registry.commits.files, commit)
    fp, missing = await ctx.call(ctx.registry.lineage.tree_fingerprint, entries)
    return JSONResponse(
        {
            "sha": commit,
            "notFingerprinted": missing,
            "tensors": None if fp is None else fp.to_dict(),
        }
    )


async def lineage_search(ctx: Ctx) -> Response:
    """``POST /api/cairn/lineage-search`` with ``{"tensors": <fingerprint>, "exclude": [repo ids]}``:
    the models the caller may read whose weights support a relation with the posted fingerprint."""
    from cairn.governance.fingerprint import Fingerprint

    data = await ctx.json()
    tensors, exclude = data.get("tensors"), data.get("exclude", [])
    if not isinstance(tensors, dict) or not isinstance(exclude, list):
        raise UsageError('lineage search needs {"tensors": {...}, "exclude": [...]}')
    if len(tensors) > MAX_SEARCH_TENSORS:  # each candidate is compared tensor by tensor
        raise UsageError(f"a fingerprint to search may name at most {MAX_SEARCH_TENSORS} tensors")
    fp = Fingerprint.from_dict(tensors)
    reg = ctx.registry
    found = await ctx.call(
        reg.lineage.search, reg, fp, ctx.principal, exclude=[str(x) for x in exclude][:1000]
    )
    return JSONResponse({"candidates": found})


REPO_OPS = {
    ("POST", "like"): like,
    ("DELETE", "like"): unlike,
    ("GET", "likers"): likers,
    ("GET", "security"): security,
    ("GET", "trust"): trust_settings,
    ("PUT", "trust"): trust_settings,
    ("POST", "quarantine"): quarantine,
    ("GET", "lineage"): lineage,
    ("GET", "fingerprint"): fingerprint,
}
