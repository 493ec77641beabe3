"""A minimal server-rendered web UI over the same registry services as the API: a repo list with search,
a repo page with its files and README, and a file view. Templates are our own (autoescaped Jinja2);
uploaded content is only ever shown as escaped text or as Markdown rendered with raw HTML disabled."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.responses import HTMLResponse, Response

from cairn.hub.context import Ctx
from cairn.hub.download import resolve_revision
from cairn.hub.info import iso
from cairn.registry import EntryNotFoundError, check_path

__all__ = ["file_page", "index", "render_markdown", "repo_page"]

_PREVIEW_BYTES = 512 * 1024


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML disabled and unsafe link schemes dropped (markdown-it defaults)."""
    from markdown_it import MarkdownIt

    body = text
    if body.startswith("---"):  # hide the YAML front matter
        end = body.find("\n---", 3)
        if end != -1:
            body = body[end + 4 :]
    rendered: str = MarkdownIt("commonmark", {"html": False}).render(body)
    return rendered


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_env().get_template(name).render(**values), status_code=status)


async def index(ctx: Ctx) -> Response:
    search = ctx.q("search") or ""
    repos = await ctx.call(ctx.registry.repos.list, "model", ctx.principal, search=search or None, limit=200)
    rows = [{"id": r.repo_id, "modified": iso(r.last_modified), "tags": r.tags[:6]} for r in repos]
    return _page("index.html", repos=rows, search=search)


async def repo_page(ctx: Ctx) -> Response:
    repo = await ctx.repo()
    commit, _ = await ctx.call(ctx.registry.commits.resolve, repo, "main")
    entries = await ctx.call(ctx.registry.commits.files, commit)
    readme_html = ""
    for e in entries:
        if e.path == "README.md":
            raw = await ctx.call(ctx.registry.read_blob, e.sha256, _PREVIEW_BYTES)
            if raw is not None:
                readme_html = render_markdown(raw.decode("utf-8", "replace"))
    files = [{"path": e.path, "size": e.size, "lfs": e.lfs} for e in entries]
    results = evaluation_rows(repo.card_data)
    return _page(
        "repo.html", repo=repo.repo_id, commit=commit, files=files, readme=readme_html, results=results
    )


_MAX_RESULT_ROWS = 500


def evaluation_rows(card_data: Mapping[str, object]) -> list[dict[str, str]]:
    """The card's ``model-index`` results (fairness reports included) as table rows; malformed entries skip."""
    rows: list[dict[str, str]] = []
    index = card_data.get("model-index")
    for model in index if isinstance(index, list) else []:
        results = model.get("results") if isinstance(model, dict) else None
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            task, dataset = result.get("task"), result.get("dataset")
            task_name = str(task.get("name") or task.get("type") or "") if isinstance(task, dict) else ""
            data_name = (
                str(dataset.get("name") or dataset.get("type") or "") if isinstance(dataset, dict) else ""
            )
            metrics = result.get("metrics")
            for metric in metrics if isinstance(metrics, list) else []:
                if isinstance(metric, dict) and len(rows) < _MAX_RESULT_ROWS:
                    rows.append(
                        {
                            "task": task_name,
                            "dataset": data_name,
                            "metric": str(metric.get("name") or metric.get("type") or ""),
                            "value": str(metric.get("value", "")),
                        }
                    )
    return rows


async def file_page(ctx: Ctx) -> Response:
    repo = await ctx.repo(content=True)
    commit, rev, rest = await resolve_revision(ctx, repo, ctx.rest)
    path = check_path("/".join(rest))
    try:
        entry = await ctx.call(ctx.registry.commits.file, commit, path)
    except EntryNotFoundError:
        return _page("message.html", 404, title="Not found", message=f"{path} does not exist at {rev}")
    text = None
    if not entry.lfs:
        raw = await ctx.call(ctx.registry.read_blob, entry.sha256, _PREVIEW_BYTES)
        if raw is not None and b"\0" not in raw[:8192]:
            text = raw.decode("utf-8", "replace")
    return _page("file.html", repo=repo.repo_id, rev=rev, commit=commit, entry=entry, text=text)
