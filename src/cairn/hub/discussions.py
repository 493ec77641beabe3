"""Discussions and pull requests over HTTP, in the Hub's wire shapes (what ``huggingface_hub``'s
``get_repo_discussions``, ``get_discussion_details``, ``create_discussion`` and the ``…/discussions/N/…``
actions parse):

``GET|POST /api/{type}s/{id}/discussions``, ``GET …/discussions/{num}``, ``POST …/discussions/{num}/
comment|title|status|merge``, ``POST …/discussions/{num}/comment/{event}/edit|hide``.

Permissions and state rules live in :mod:`cairn.registry.pulls` and :mod:`cairn.registry.discussions`.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, Response

from cairn.errors import UsageError
from cairn.hub.context import Ctx
from cairn.hub.info import iso
from cairn.registry import Repo, pulls
from cairn.registry.discussions import (
    MAX_EVENT_ID,
    Discussion,
    Event,
    EventNotFoundError,
    check_comment,
    check_title,
)

__all__ = ["discussion_json", "event_json", "find_page", "get_discussions", "parse_num", "post_discussions"]

PAGE = 50
EVENTS_PAGE = 200  # events of one thread per details answer (``?p=N`` pages on)
_NUM = re.compile(r"[1-9][0-9]{0,8}")
_EVENT = re.compile(r"[0-9a-f]{24}")
_TYPES = {"all", "discussion", "pull_request"}
_STATUSES = {"all", "open", "closed"}


async def find_page(
    ctx: Ctx, repo: Repo, page: int, size: int, *, author: str | None = None
) -> tuple[list[Discussion], int, int]:
    """Page ``page`` of the repo's discussions under the request's ``type`` and ``status`` filters (the
    API's and the web page's): (items, how many match, how many of those are closed)."""
    kind, status = ctx.q("type") or "all", ctx.q("status") or "all"
    if kind not in _TYPES or status not in _STATUSES:
        raise UsageError("type must be all|discussion|pull_request and status all|open|closed")
    found: tuple[list[Discussion], int, int] = await ctx.call(
        ctx.registry.discussions.find,
        repo,
        kind=None if kind == "all" else kind,
        status=None if status == "all" else status,
        author=author,
        offset=page * size,
        limit=size,
    )
    return found


def parse_num(text: str) -> int:
    if not _NUM.fullmatch(text):
        raise UsageError(f"a discussion number must be a positive integer, not {text[:40]!r}")
    return int(text)


def _event_id(text: str) -> int:
    if not _EVENT.fullmatch(text) or not 0 < int(text, 16) <= MAX_EVENT_ID:
        raise EventNotFoundError(text)
    return int(text, 16)


def discussion_json(repo: Repo, d: Discussion) -> dict[str, Any]:
    return {
        "num": d.num,
        "title": d.title,
        "status": d.status,
        "isPullRequest": d.is_pull_request,
        "author": {"name": d.author},
        "createdAt": iso(d.created_at),
        "repo": {"name": repo.repo_id, "type": repo.type},
        "pinned": False,
        "topReactions": [],
    }


def _events_json(events: list[Event]) -> list[dict[str, Any]]:
    return [event_json(e) for e in events]


def event_json(e: Event) -> dict[str, Any]:
    """One event in the Hub's shape (a comment's Markdown is rendered: call it through ``ctx.call``). A comment carries the text of its latest version only; its
    ``history`` lists every version's date and author but not the older texts, which stay stored: up
    to 100 versions of 64 KiB each would make every read of the thread megabytes long."""
    from cairn.hub.web import render_markdown

    out: dict[str, Any] = {
        "id": e.hex_id,
        "type": e.kind,
        "createdAt": iso(e.created_at),
        "author": {"name": e.author},
    }
    if e.kind == "comment":
        history = e.data["history"]
        newest = history[0]
        latest = {
            "raw": newest["raw"],
            "html": "" if e.hidden else render_markdown(newest["raw"]),
            "updatedAt": iso(newest["updatedAt"]),
            "author": {"name": newest["author"]},
        }
        out["data"] = {
            "edited": bool(e.data.get("edited")),
            "hidden": e.hidden,
            "latest": latest,
            "numEdits": len(history) - 1,
            "editors": sorted({v["author"] for v in history if v["author"]}),
            # one entry per version (huggingface_hub counts them), the text on the newest only
            "history": [latest]
            + [{"updatedAt": iso(v["updatedAt"]), "author": {"name": v["author"]}} for v in history[1:]],
        }
    else:
        out["data"] = dict(e.data)
    return out


async def _discussion(ctx: Ctx) -> tuple[Repo, Discussion]:
    repo = await ctx.repo()
    d = await ctx.call(ctx.registry.discussions.get, repo, parse_num(ctx.rest[0]))
    return repo, d


async def details_json(ctx: Ctx, repo: Repo, d: Discussion) -> dict[str, Any]:
    page = ctx.qint("p", 0, lo=0, hi=1 << 20)
    events = await ctx.call(ctx.registry.discussions.events, d, offset=page * EVENTS_PAGE, limit=EVENTS_PAGE)
    out = discussion_json(repo, d)
    out["events"] = await ctx.call(_events_json, events)  # Markdown renders off the event loop
    out["numEvents"] = await ctx.call(ctx.registry.discussions.count_events, d)
    if d.is_pull_request:
        out["changes"] = {"base": f"refs/heads/{d.target_branch}"}
        if d.merge_commit:
            out["changes"]["mergeCommitId"] = d.merge_commit
        out["filesWithConflicts"] = await ctx.call(pulls.conflicting_files, ctx.registry, repo, d)
    return out


async def get_discussions(ctx: Ctx) -> Response:
    if ctx.rest:
        if len(ctx.rest) != 1:
            return JSONResponse({"error": "no such discussion route", "code": "route_not_found"}, 404)
        repo, d = await _discussion(ctx)
        return JSONResponse(await details_json(ctx, repo, d))
    repo = await ctx.repo()
    page = ctx.qint("p", 0, lo=0, hi=1 << 20)
    items, total, closed = await find_page(ctx, repo, page, PAGE, author=ctx.q("author") or None)
    return JSONResponse(
        {
            "discussions": [discussion_json(repo, d) for d in items],
            "count": total,
            "start": page * PAGE,
            "numClosedDiscussions": closed,
        }
    )


async def post_discussions(ctx: Ctx) -> Response:
    if not ctx.rest:
        return await _create(ctx)
    if len(ctx.rest) == 2 and ctx.rest[1] in _ACTIONS:
        return await _ACTIONS[ctx.rest[1]](ctx)
    if len(ctx.rest) == 4 and ctx.rest[1] == "comment" and ctx.rest[3] in {"edit", "hide"}:
        return await _edit_comment(ctx)
    return JSONResponse({"error": "no such discussion route", "code": "route_not_found"}, 404)


async def _create(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    who = pulls.acting_user(ctx.principal, repo)
    data = await ctx.json()
    title, description = check_title(data.get("title")), data.get("description")
    if description is not None and not isinstance(description, str):
        raise UsageError("'description' must be a string")
    if data.get("pullRequest") is True:
        target = data.get("target") or "main"
        if not isinstance(target, str):
            raise UsageError("'target' must be a branch name")
        d = await ctx.call(
            pulls.open_pull_request, ctx.registry, repo, who, title, description, target=target
        )
    else:
        d = await ctx.call(ctx.registry.discussions.create, repo, who.user.name, title, description)
    out = discussion_json(repo, d)
    out["url"] = f"{ctx.repo_url(repo)}/discussions/{d.num}"
    if d.is_pull_request:
        out["ref"] = d.ref
    return JSONResponse(out)


async def _comment(ctx: Ctx) -> Response:
    repo, d = await _discussion(ctx)
    who = pulls.acting_user(ctx.principal, repo)
    data = await ctx.json()
    text = check_comment(data.get("comment"))
    event = await ctx.call(ctx.registry.discussions.comment, d, who.user.name, text)
    return JSONResponse({"newMessage": await ctx.call(event_json, event)})


async def _title(ctx: Ctx) -> Response:
    repo, d = await _discussion(ctx)
    who = pulls.may_change(ctx.principal, repo, d)
    data = await ctx.json()
    event = await ctx.call(ctx.registry.discussions.rename, d, who.user.name, check_title(data.get("title")))
    return JSONResponse({"newTitle": await ctx.call(event_json, event)})


async def _status(ctx: Ctx) -> Response:
    repo, d = await _discussion(ctx)
    data = await ctx.json()
    status, comment = data.get("status"), data.get("comment")
    if not isinstance(status, str):
        raise UsageError("'status' must be 'open' or 'closed'")
    if comment is not None:
        comment = check_comment(comment)
    event = await ctx.call(pulls.set_status, ctx.registry, repo, ctx.principal, d, status, comment)
    return JSONResponse({"newStatus": await ctx.call(event_json, event)})


async def _merge(ctx: Ctx) -> Response:
    repo, d = await _discussion(ctx)
    data = await ctx.json(required=False)
    comment = data.get("comment")
    if comment is not None:
        comment = check_comment(comment)
    done = await ctx.call(pulls.merge_pull_request, ctx.registry, repo, ctx.principal, d, comment)
    return JSONResponse({"mergeCommitId": done.id})


async def _edit_comment(ctx: Ctx) -> Response:
    repo, d = await _discussion(ctx)
    who = pulls.acting_user(ctx.principal, repo)
    event_id = _event_id(ctx.rest[2])
    if ctx.rest[3] == "edit":
        data = await ctx.json()
        content = check_comment(data.get("content"), "content")
        event = await ctx.call(ctx.registry.discussions.edit_comment, d, event_id, who.user.name, content)
    else:
        target = await ctx.call(ctx.registry.discussions.get_event, d, event_id)
        pulls.may_hide(who, repo, target.author)  # its author and the repo's writers only
        event = await ctx.call(ctx.registry.discussions.hide_comment, d, event_id)
    return JSONResponse({"updatedComment": await ctx.call(event_json, event)})


_ACTIONS = {"comment": _comment, "title": _title, "status": _status, "merge": _merge}
