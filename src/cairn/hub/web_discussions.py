"""Web pages for discussions and pull requests: ``/{repo}/discussions`` (filterable list) and
``/{repo}/discussions/{num}`` (the thread with its events, and for a pull request what it changes against
the commit it started from: files, line diffs and tensors, as on the commit pages). Same registry
services and visibility rules as the API; comments are Markdown rendered with raw HTML disabled."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cairn.hub.compare import changes_values
from cairn.hub.context import Ctx
from cairn.hub.discussions import EVENTS_PAGE, find_page, parse_num
from cairn.hub.info import iso
from cairn.hub.web import render_markdown, render_page, repo_base
from cairn.registry import Repo, RevisionNotFoundError, pulls
from cairn.registry.compare import compare_revisions
from cairn.registry.discussions import Discussion

__all__ = ["discussion_page", "discussions_page"]

_PAGE = 50
_KINDS = (("all", "All"), ("discussion", "Discussions"), ("pull_request", "Pull requests"))
_STATUSES = (("all", "any status"), ("open", "open"), ("closed", "closed"))


async def discussions_page(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    kind, status = ctx.q("type") or "all", ctx.q("status") or "all"
    page = ctx.qint("p", 0, lo=0, hi=1 << 20)
    items, total, _ = await find_page(ctx, repo, page, _PAGE)
    rows = [{**d.__dict__, "date": iso(d.created_at)} for d in items]
    return render_page(
        "discussions.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        items=rows,
        kind=kind,
        state=status,
        kinds=_KINDS,
        statuses=_STATUSES,
        page=page,
        more=(page + 1) * _PAGE < total,
    )


async def discussion_page(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    d = await ctx.call(ctx.registry.discussions.get, repo, parse_num(ctx.rest[0]))
    page = ctx.qint("p", 0, lo=0, hi=1 << 20)
    events = await ctx.call(
        ctx.registry.discussions.events, d, offset=page * EVENTS_PAGE, limit=EVENTS_PAGE + 1
    )
    more, events = len(events) > EVENTS_PAGE, events[:EVENTS_PAGE]
    conflicts = await ctx.call(pulls.conflicting_files, ctx.registry, repo, d)
    changes = await _pull_request_changes(ctx, repo, d)
    rows = []
    texts = [str(e.data["history"][0]["raw"]) for e in events if e.kind == "comment" and not e.hidden]
    rendered = iter(await ctx.call(_render_all, texts))  # one worker thread, off the event loop
    for e in events:
        row: dict[str, object] = {
            "kind": e.kind,
            "author": e.author,
            "date": iso(e.created_at),
            "hidden": e.hidden,
            "data": e.data,
        }
        if e.kind == "comment":
            row["edited"] = bool(e.data.get("edited"))
            row["html"] = "" if e.hidden else next(rendered)
        rows.append(row)
    return render_page(
        "discussion.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        d=d,
        opened=iso(d.created_at),
        events=rows,
        conflicts=conflicts,
        page=page,
        more=more,
        **changes,
    )


async def _pull_request_changes(ctx: Ctx, repo: Repo, d: Discussion) -> dict[str, Any]:
    """What the pull request's head changes against the commit it started from (nothing for a plain
    discussion, or a pull request whose ref is gone)."""
    if not d.is_pull_request or d.base_commit is None:
        return {}
    try:
        head, _ = await ctx.call(ctx.registry.commits.resolve, repo, d.ref)
    except RevisionNotFoundError:
        return {}
    found = await ctx.call(compare_revisions, ctx.registry, d.base_commit, head)
    return await changes_values(ctx, repo, found)


def _render_all(texts: list[str]) -> list[str]:
    return [render_markdown(t) for t in texts]
