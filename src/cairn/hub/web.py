"""A minimal server-rendered web UI over the same registry services as the API: a repo list with search,
a repo page with its files and README, and a file view. Templates are our own (autoescaped Jinja2);
uploaded content is only ever shown as escaped text or as Markdown rendered with raw HTML disabled.

What a page may show of a file's bytes (text preview, README, tensor table, line diffs) follows the
download rule, :meth:`~cairn.registry.Registry.check_download`, through :func:`refusal`: a quarantined
file shows its verdict, a permanently deleted one says so, never their contents. Every page is sent with :data:`HTML_HEADERS`
(no script, no framing, no sniffing); Markdown renders off the event loop, from at most
:data:`MAX_MARKDOWN_CHARS` characters; bidi control characters print as visible escapes."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.responses import HTMLResponse, Response

from cairn.hub.context import PREFIX, Ctx
from cairn.hub.download import resolve_revision
from cairn.hub.info import iso
from cairn.hub.web_views import (
    card_summary,
    evaluation_rows,
    human_size,
    license_panel,
    parameter_summary,
    repo_link,
    signature_panel,
    tensor_rows,
)
from cairn.registry import EntryNotFoundError, FileEntry, Repo, check_path
from cairn.registry.errors import FileDeletedError
from cairn.registry.trust import QuarantinedFileError

__all__ = [
    "HTML_HEADERS",
    "MAX_FOLDER_ROWS",
    "MAX_MARKDOWN_CHARS",
    "commits_page",
    "evaluation_rows",
    "file_page",
    "index",
    "refusal",
    "render_markdown",
    "render_page",
    "repo_base",
    "repo_page",
    "visible",
]

_PREVIEW_BYTES = 512 * 1024
#: Markdown past this many characters is cut before rendering (pure-Python rendering of hostile input
#: costs about 15 µs a character)
MAX_MARKDOWN_CHARS = 100_000
#: rows a folder listing shows (sub-folders first); the rest are counted in a note
MAX_FOLDER_ROWS = 1000

#: sent with every HTML page: no script or plugin at all, inline styles (the templates' own <style>),
#: images from the hub and https (README images), never framed, no <base>, forms only to the hub
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# Unicode bidi embedding, override and isolate controls: they reorder the text around them, so a name
# holding one can read as another (``model\u202esrotnesfas.pkl``); pages show them as escapes.
_BIDI = {c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def visible(value: Any) -> Any:
    """``value`` with bidi control characters replaced by their ``\\uXXXX`` escape (the templates'
    ``finalize``: it applies to everything a page prints, rendered Markdown included)."""
    if isinstance(value, str):
        cleaned = value.translate(_BIDI)
        return value if cleaned == value else type(value)(cleaned)  # keeps Markup as Markup
    return value


def _rev(value: str) -> str:
    """A revision as one URL path segment: ``dev/x`` is ``dev%2Fx`` (the router keeps it whole)."""
    return quote(value, safe="")


@lru_cache(maxsize=1)
def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=visible,
    )
    env.filters["rev"] = _rev
    env.filters["repo_link"] = repo_link
    return env


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML disabled and unsafe link schemes dropped (markdown-it defaults),
    from the first :data:`MAX_MARKDOWN_CHARS` characters. Slow on hostile input: call it through
    ``ctx.call``, never on the event loop."""
    body = text
    if body.startswith("---"):  # hide the YAML front matter
        end = body.find("\n---", 3)
        if end != -1:
            body = body[end + 4 :]
    return _render(body)


@lru_cache(maxsize=64)
def _render(body: str) -> str:
    """Rendered once per distinct text while it stays in the cache: repeated views of one hostile
    README cost one rendering."""
    from markdown_it import MarkdownIt

    cut = len(body) > MAX_MARKDOWN_CHARS
    rendered: str = MarkdownIt("commonmark", {"html": False}).render(body[:MAX_MARKDOWN_CHARS])
    if cut:
        rendered += (
            f"<p><em>Cut at {MAX_MARKDOWN_CHARS:,} characters; download the file to read the rest.</em></p>\n"
        )
    return rendered


def render_page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Template ``name`` as an HTML response with :data:`HTML_HEADERS`."""
    html = _env().get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=HTML_HEADERS)


def repo_base(repo: Repo) -> str:
    """The URL path of a repo's pages: ``/alice/x``, ``/datasets/alice/x``, ``/spaces/alice/x``."""
    return f"/{PREFIX[repo.type]}{quote(repo.namespace, safe='')}/{quote(repo.name, safe='')}"


async def refusal(ctx: Ctx, repo: Repo, entry: FileEntry) -> str | None:
    """Why a page may not show ``entry``'s bytes (``"quarantined"``, ``"deleted"``), or ``None``: the
    same rule as a download of them (:meth:`~cairn.registry.Registry.check_download`)."""
    try:
        await ctx.call(ctx.registry.check_download, repo, entry)
    except QuarantinedFileError:
        return "quarantined"
    except FileDeletedError:
        return "deleted"
    return None


_SORTS = (("lastModified", "Recently updated"), ("downloads", "Most downloads"), ("likes", "Most likes"))


async def index(ctx: Ctx) -> Response:
    """``/``: the models the caller can see, searchable and sortable."""
    search = ctx.q("search") or ""
    sort = ctx.q("sort") or "lastModified"
    if sort not in dict(_SORTS):
        sort = "lastModified"
    repos = await ctx.call(
        ctx.registry.repos.list, "model", ctx.principal, search=search or None, sort=sort, limit=200
    )
    rows = [
        {
            "id": r.repo_id,
            "private": r.private,
            "modified": iso(r.last_modified),
            "downloads": r.downloads,
            "likes": r.likes,
            "tags": r.tags[:6],
        }
        for r in repos
    ]
    return render_page("index.html", repos=rows, search=search, sort=sort, sorts=_SORTS)


async def repo_page(ctx: Ctx) -> Response:
    """``/{repo}`` (main) and ``/{repo}/tree/{rev}[/{dir}]``: a folder of a
    revision with each file's scan verdict, and at the top level the card facts, trust status and README."""
    repo = await ctx.repo()
    if ctx.rest:
        commit, rev, rest = await resolve_revision(ctx, repo, ctx.rest, min_rest=0)
    else:
        rev, rest = "main", []
        commit, _ = await ctx.call(ctx.registry.commits.resolve, repo, rev)
    folder = check_path("/".join(p for p in rest if p)) if any(rest) else ""
    entries = await ctx.call(ctx.registry.commits.files, commit)
    inside = [e for e in entries if not folder or e.path.startswith(folder + "/")]
    if folder and not inside:
        if any(e.path == folder for e in entries):
            return await file_page(ctx)
        return render_page(
            "message.html", 404, title="Not found", message=f"{folder} does not exist at {rev}"
        )
    status = await ctx.call(ctx.registry.trust.file_status, inside)
    dirs, files = _listing(inside, folder, status)
    hidden = max(0, len(dirs) + len(files) - MAX_FOLDER_ROWS)
    dirs = dirs[:MAX_FOLDER_ROWS]
    files = files[: MAX_FOLDER_ROWS - len(dirs)]
    values: dict[str, Any] = {}
    if not folder:
        values = await _top_of_repo(ctx, repo, commit, entries, status)
    refs = await ctx.call(ctx.registry.commits.refs, repo)
    return render_page(
        "repo.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        private=repo.private,
        gated=repo.gated,
        rev=rev,
        commit=commit,
        folder=folder,
        crumbs_list=_crumbs(folder),
        branches=sorted(r.name for r in refs if r.kind == "branch"),
        tags=sorted(r.name for r in refs if r.kind == "tag"),
        dirs=dirs,
        files=files,
        hidden=hidden,
        likes=repo.likes,
        downloads=repo.downloads,
        **values,
    )


async def _top_of_repo(
    ctx: Ctx, repo: Repo, commit: str, entries: list[FileEntry], status: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    readme_html, readme_refused = "", None
    for e in entries:
        if e.path == "README.md":
            readme_refused = await refusal(ctx, repo, e)
            if readme_refused is not None:
                continue
            raw = await ctx.call(ctx.registry.read_blob, e.sha256, _PREVIEW_BYTES)
            if raw is not None:
                readme_html = await ctx.call(render_markdown, raw.decode("utf-8", "replace"))
    record = await ctx.call(ctx.registry.trust.revision, commit)
    flagged = sum(1 for verdict, _ in status.values() if verdict not in {"safe", "unscanned"})
    return {
        "readme": readme_html,
        "readme_refused": readme_refused,
        "results": evaluation_rows(repo.card_data),
        "card": card_summary(repo.card_data, repo.tags, (repo.pipeline_tag, repo.library_name)),
        "pipeline_tag": repo.pipeline_tag,
        "library": repo.library_name,
        "params": parameter_summary(record),
        "signature": signature_panel(record),
        "license_check": license_panel(record),
        "flagged": flagged,
    }


def _listing(
    entries: list[FileEntry], folder: str, status: Mapping[str, tuple[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sub-folders (with total size and file count) and files directly inside ``folder``."""
    prefix = folder + "/" if folder else ""
    dirs: dict[str, dict[str, Any]] = {}
    files = []
    for e in entries:
        rel = e.path[len(prefix) :]
        head, sep, _ = rel.partition("/")
        if sep:
            d = dirs.setdefault(
                head, {"name": head, "path": prefix + head, "size": 0, "count": 0, "flagged": 0}
            )
            d["size"] += e.size
            d["count"] += 1
            d["flagged"] += status.get(e.path, ("unscanned", None))[0] not in {"safe", "unscanned"}
        else:
            verdict, found = status.get(e.path, ("unscanned", None))
            files.append(
                {
                    "name": rel,
                    "path": e.path,
                    "size": human_size(e.size),
                    "lfs": e.lfs,
                    "verdict": verdict,
                    "findings": 0 if found is None else len(found.findings),
                }
            )
    out_dirs = [{**d, "size": human_size(d["size"])} for _, d in sorted(dirs.items())]
    return out_dirs, sorted(files, key=lambda f: f["name"])


def _crumbs(folder: str) -> list[dict[str, str]]:
    parts = folder.split("/") if folder else []
    return [{"name": p, "path": "/".join(parts[: i + 1])} for i, p in enumerate(parts)]


async def commits_page(ctx: Ctx) -> Response:
    """``/{repo}/commits/{rev}``: the history of a revision, newest first, 100 a page (``?p=N``)."""
    repo = await ctx.repo()
    commit, rev, _ = await resolve_revision(ctx, repo, ctx.rest or ["main"], min_rest=0)
    page = ctx.qint("p", 0, lo=0, hi=_MAX_HISTORY_PAGE)
    history = await ctx.call(
        ctx.registry.commits.history, repo, commit, offset=page * _HISTORY_PAGE, limit=_HISTORY_PAGE + 1
    )
    rows = [
        {"id": c.id, "title": c.title, "author": c.author, "date": iso(c.created_at)}
        for c in history[:_HISTORY_PAGE]
    ]
    return render_page(
        "commits.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        rev=rev,
        commits=rows,
        page=page,
        more=len(history) > _HISTORY_PAGE,
    )


_HISTORY_PAGE = 100
_MAX_HISTORY_PAGE = 1 << 40  # offsets stay well inside 64-bit SQL integers


async def file_page(ctx: Ctx) -> Response:
    """``/{repo}/blob/{rev}/{path}``: a file's facts, its scan verdict with findings, a text preview, and
    the tensor table of a safetensors file (its header only, read with two range reads)."""
    repo = await ctx.repo(content=True)
    commit, rev, rest = await resolve_revision(ctx, repo, ctx.rest)
    path = check_path("/".join(rest))
    try:
        entry = await ctx.call(ctx.registry.commits.file, commit, path)
    except EntryNotFoundError:
        return render_page("message.html", 404, title="Not found", message=f"{path} does not exist at {rev}")
    text = None
    refused = await refusal(ctx, repo, entry)
    shown = refused is None
    if shown and not entry.lfs:
        raw = await ctx.call(ctx.registry.read_blob, entry.sha256, _PREVIEW_BYTES)
        if raw is not None and b"\0" not in raw[:8192]:
            text = raw.decode("utf-8", "replace")
    status = await ctx.call(ctx.registry.trust.file_status, [entry])
    verdict, found = status.get(entry.path, ("unscanned", None))
    findings = [] if found is None else found.findings[:_MAX_FINDINGS]
    tensors: list[dict[str, str]] = []
    n_tensors = 0
    if shown and path.endswith(".safetensors"):

        def read(start: int, end: int) -> bytes:
            return b"".join(ctx.registry.iter_blob(entry.sha256, start, end))

        tensors, n_tensors = await ctx.call(tensor_rows, read, entry.size, path)
    return render_page(
        "file.html",
        repo=repo.repo_id,
        base=repo_base(repo),
        rev=rev,
        commit=commit,
        entry=entry,
        size=human_size(entry.size),
        text=text,
        refused=refused,
        verdict=verdict,
        findings=[_finding(f) for f in findings],
        tensors=tensors,
        n_tensors=n_tensors,
        crumbs_list=_crumbs(path.rpartition("/")[0]),
    )


_MAX_FINDINGS = 200


def _finding(f: Mapping[str, Any]) -> dict[str, str]:
    return {
        "severity": str(f.get("severity", "")),
        "rule": str(f.get("rule", "")),
        "construct": str(f.get("construct", "")),
        "message": str(f.get("message", f.get("detail", "")))[:500],
    }
