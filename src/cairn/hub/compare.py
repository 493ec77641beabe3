"""What a commit changed, and what changed between any two revisions, on the web and as JSON.

- ``GET /{repo}/commit/{id}``: the commit (title, message, author, parent) and its changes against its
  parent: files added, removed and modified, a line diff of each small text file, and the model's
  tensors from the weight fingerprints (identical, changed with their sketch similarity, new dtype or
  shape, added, removed) with what the new weights are to the old (copy, finetune, partial update...).
- ``GET /{repo}/compare/{base}...{head}``: the same between two revisions (branches, tags, commits).
- ``GET /api/{type}s/{repo}/compare/{base}...{head}``: cairn's own JSON of the same (no text diffs).

File names and counts follow the repo's visibility rules; text diffs and tensors are file contents, so
a gated repo shows them only to callers with access (the others see which files changed).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from cairn.errors import UsageError
from cairn.hub.context import Ctx
from cairn.hub.info import iso
from cairn.hub.web import refusal, render_page, repo_base
from cairn.hub.web_views import human_size
from cairn.registry import GatedRepoError, Repo
from cairn.registry.compare import FileChange, RevisionDiff, compare_revisions, text_diff, text_diffable

__all__ = ["changes_values", "commit_page", "compare_api", "compare_page"]

#: text files diffed on one page (the rest are listed with a link to the file): with at most 2,000
#: lines a side, a page costs at most about 2 s of difflib in the worst case
MAX_TEXT_DIFFS = 10


async def compare_api(ctx: Ctx) -> Response:
    """``GET /api/{type}s/{repo}/compare/{base}...{head}``."""
    repo = await ctx.repo(content=True)
    base, head = await _two_revisions(ctx, repo)
    found = await ctx.call(compare_revisions, ctx.registry, base, head)
    return JSONResponse(found.to_dict())


async def commit_page(ctx: Ctx) -> Response:
    """``/{repo}/commit/{id}``: a commit and its changes against its parent."""
    repo = await ctx.repo()
    rev = "/".join(ctx.rest)
    commit_id, _ = await ctx.call(ctx.registry.commits.resolve, repo, rev)
    commit = await ctx.call(ctx.registry.commits.get_commit, repo, commit_id)
    found = None
    if commit.parent_id is not None:
        found = await ctx.call(compare_revisions, ctx.registry, commit.parent_id, commit.id)
    values = await changes_values(ctx, repo, found)
    return render_page(
        "commit.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        commit={
            "id": commit.id,
            "parent": commit.parent_id,
            "title": commit.title,
            "message": commit.message,
            "author": commit.author,
            "date": iso(commit.created_at),
        },
        **values,
    )


async def compare_page(ctx: Ctx) -> Response:
    """``/{repo}/compare/{base}...{head}``."""
    repo = await ctx.repo()
    base, head = await _two_revisions(ctx, repo)
    found = await ctx.call(compare_revisions, ctx.registry, base, head)
    base_rev, _, head_rev = "/".join(ctx.rest).partition("...")
    values = await changes_values(ctx, repo, found)
    return render_page(
        "compare.html", repo=repo.repo_id, base=repo_base(repo), base_rev=base_rev, head=head_rev, **values
    )


async def _two_revisions(ctx: Ctx, repo: Repo) -> tuple[str, str]:
    spec = "/".join(ctx.rest)
    base, sep, head = spec.partition("...")
    if not sep or not base or not head:
        raise UsageError("compare needs two revisions: compare/BASE...HEAD")
    base_id, _ = await ctx.call(ctx.registry.commits.resolve, repo, base)
    head_id, _ = await ctx.call(ctx.registry.commits.resolve, repo, head)
    return base_id, head_id


async def changes_values(ctx: Ctx, repo: Repo, found: RevisionDiff | None) -> dict[str, Any]:
    """The template values for a diff: file rows (with text diffs when the caller may read contents),
    counts and the tensor table."""
    if found is None:
        return {"files": [], "counts": None, "tensors": None, "truncated": False, "contents": True}
    try:
        await ctx.call(ctx.registry.repos.check_content_access, repo, ctx.principal)
        contents = True
    except GatedRepoError:
        contents = False
    rows = []
    diffs = 0
    for change in found.files:
        lines = None
        # only a change that could be diffed costs a download check: listing LFS weights needs none
        if (
            contents
            and diffs < MAX_TEXT_DIFFS
            and text_diffable(change)
            and not await _refused(ctx, repo, change)
        ):
            lines = await ctx.call(text_diff, ctx.registry, change)
            diffs += lines is not None
        rows.append(
            {
                "path": change.path,
                "status": change.status,
                "old_size": None if change.old is None else human_size(change.old.size),
                "new_size": None if change.new is None else human_size(change.new.size),
                "lfs": any(e is not None and e.lfs for e in (change.old, change.new)),
                "diff": lines,
            }
        )
    tensors = None
    if contents and found.tensors is not None:
        t = found.tensors
        tensors = {
            "counts": t.counts,
            "identical_size": human_size(t.identical_bytes),
            "relation": t.relation,
            "truncated": t.truncated,
            "missing": t.not_fingerprinted,
            "rows": [
                {
                    "name": c.name,
                    "status": c.status,
                    "old": "" if c.old is None else f"{c.old.dtype} {list(c.old.shape)}",
                    "new": "" if c.new is None else f"{c.new.dtype} {list(c.new.shape)}",
                    "similarity": None if c.similarity is None else f"{c.similarity:.4f}",
                }
                for c in t.changes
            ],
        }
    return {
        "files": rows,
        "counts": found.counts,
        "tensors": tensors,
        "truncated": found.truncated,
        "contents": contents,
        "base_id": found.base,
        "head_id": found.head,
    }


async def _refused(ctx: Ctx, repo: Repo, change: FileChange) -> bool:
    """Whether a download of either side would be refused (quarantined, deleted): then no line diff."""
    for entry in (change.old, change.new):
        if entry is not None and await refusal(ctx, repo, entry) is not None:
            return True
    return False
