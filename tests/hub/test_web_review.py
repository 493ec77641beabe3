"""Hostile review of the hub's web UI (``web.py``, ``web_views.py``, ``web_discussions.py``, templates).

Each test states what a visitor or uploader can do to the pages. Tests marked ``xfail(strict=True)``
reproduce a bug that is still open: a fix makes them pass, and strictness then asks for the mark to go.
The others pin down behaviour the review found right, so that it stays right.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi

from cairn.hub.web import render_markdown
from cairn.hub.web_views import MAX_TENSOR_ROWS
from cairn.registry import AddFile

# A protocol-0 pickle that calls os.system; the leading string (pushed, then popped) is a marker that
# only appears in the page if the file's bytes are shown. It is only ever scanned, never loaded.
_MARKER = "leakmarker-7f3a"
EVIL_PICKLE = f"S'{_MARKER}'\n0cos\nsystem\n(S'echo pwned'\ntR.".encode()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_quarantined_file_bytes_are_not_shown_on_the_blob_page(quarantine_hub: LiveHub) -> None:
    """Under ``on_unsafe="quarantine"`` a flagged file is refused for download (403) until an admin
    releases it, but ``/blob/`` shows the first 512 KiB of any non-LFS file as text whatever its verdict.
    A small unsafe file under a name that is not an LFS pattern (``.txt``, ``.py``, no extension ...) is
    stored inline, so anyone, anonymous included, copies the quarantined payload off the page: the
    quarantine promises the bytes do not reach users, and the web view hands them out."""
    hub = quarantine_hub
    repo = f"alice/{_name('rv-quarantine')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=EVIL_PICKLE, path_in_repo="payload.txt", repo_id=repo)
    assert httpx.get(f"{hub.url}/{repo}/resolve/main/payload.txt").status_code == 403  # quarantined
    page = httpx.get(f"{hub.url}/{repo}/blob/main/payload.txt")
    assert page.status_code == 200 and ">unsafe<" in page.text
    assert _MARKER not in page.text


def test_quarantined_readme_is_not_rendered_on_the_repo_page(quarantine_hub: LiveHub) -> None:
    """The same bypass through the repo page: ``_top_of_repo`` renders ``README.md`` without asking for
    its verdict, so a README that the scanner flagged (and the download refuses) is shown to everyone."""
    hub = quarantine_hub
    repo = f"alice/{_name('rv-quarantine-readme')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=EVIL_PICKLE, path_in_repo="README.md", repo_id=repo)
    assert httpx.get(f"{hub.url}/{repo}/resolve/main/README.md").status_code == 403
    page = httpx.get(f"{hub.url}/{repo}")
    assert page.status_code == 200
    assert _MARKER not in page.text


def test_card_base_model_links_never_leave_the_hub(hub: LiveHub) -> None:
    """``repo.html`` prints ``<a href="/{{ b }}">`` for each ``base_model`` of the card, and the card is
    the uploader's YAML. ``base_model: /evil.example/login`` gives ``href="//evil.example/login"``, a
    protocol-relative link to another site, and ``\\evil.example`` gives ``/\\evil.example``, which
    browsers read the same way. The hub then shows a phishing link as one of its own model links (the
    "Base model" line a visitor trusts to lead to the parent model on this hub)."""
    repo = f"alice/{_name('rv-base-model')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    card = b"---\nbase_model:\n- /evil.example/login\n- '\\\\evil.example/x'\n---\n# card\n"
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo)
    page = httpx.get(f"{hub.url}/{repo}")
    assert page.status_code == 200 and "evil.example" in page.text
    off_site = [h for h in _hrefs(page.text) if h.startswith(("//", "/\\")) or "://" in h]
    assert off_site == []


def test_html_pages_send_security_headers(hub: LiveHub) -> None:
    """The web pages render uploader-controlled text (cards, READMEs, comments, tensor names) and are
    served with no ``Content-Security-Policy``, no ``X-Frame-Options``/``frame-ancestors`` and no
    ``X-Content-Type-Options``. Any page can be framed by another site (clickjacking of the repo
    pages a signed-in admin browses) and one escaping slip anywhere is script on the hub's origin with
    nothing to stop it. Raw downloads already send ``nosniff``; the pages should at least match."""
    repo = f"alice/{_name('rv-headers')}"
    HfApi(endpoint=hub.url, token=hub.token).create_repo(repo)
    for path in ("/", f"/{repo}", f"/{repo}/commits/main", f"/{repo}/discussions"):
        r = httpx.get(hub.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors" in csp or r.headers.get("x-frame-options", "").upper() in {
            "DENY",
            "SAMEORIGIN",
        }
        assert "script-src" in csp or "default-src" in csp
        assert r.headers.get("x-content-type-options") == "nosniff"


def test_a_huge_folder_renders_a_bounded_page(hub: LiveHub) -> None:
    """``repo_page`` loads every file of the commit, asks the trust service for every verdict, and puts
    one table row per file in the page: a repo with 100k files in a folder makes a page of 100k rows on
    every anonymous view (and as many verdict look-ups). The tensor table stops at ``MAX_TENSOR_ROWS``;
    the folder listing has no such limit. Here a folder of ``MAX_TENSOR_ROWS + 100`` files must not
    come back as that many rows."""
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    name = _name("rv-many-files")
    repo = reg.repos.create(who, "model", "alice", name, private=False)
    blob = reg.ingest_bytes(b"same small file", repo_id=repo.id)
    n = MAX_TENSOR_ROWS + 100
    reg.commit(
        repo,
        "main",
        [AddFile(f"d/f{i:05d}.txt", blob.sha256) for i in range(n)],
        title="many",
        author="alice",
    )
    page = httpx.get(f"{hub.url}/alice/{name}/tree/main/d", timeout=120)
    assert page.status_code == 200
    rows = page.text.count(f'href="/alice/{name}/blob/main/d/f')
    assert 0 < rows <= MAX_TENSOR_ROWS


def test_commit_page_of_another_repos_commit_is_not_found(hub: LiveHub) -> None:
    """``/{repo}/commit/{id}`` resolves the id only among the repo's own commits: a private repo's commit
    id (or a unique prefix of it) asked through a public repo shows nothing of the private tree."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    public, private = f"alice/{_name('rv-pub')}", f"alice/{_name('rv-priv')}"
    api.create_repo(public)
    api.create_repo(private, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="secret-file.txt", repo_id=private)
    secret = api.model_info(private).sha
    assert secret is not None
    for rev in (secret, secret[:12]):
        for kind in ("commit", "tree", "commits"):
            r = httpx.get(f"{hub.url}/{public}/{kind}/{rev}")
            assert r.status_code == 404 and "secret-file" not in r.text
        r = httpx.get(f"{hub.url}/{public}/blob/{rev}/secret-file.txt")
        assert r.status_code == 404 and "secret" not in r.text.replace(rev, "")
    for path in ("", "/commits/main", "/discussions", f"/commit/{secret}", "/tree/main", "/discussions/1"):
        r = httpx.get(f"{hub.url}/{private}{path}")
        assert r.status_code == 401 and "secret-file" not in r.text


def test_malformed_web_requests_get_a_clear_client_error(hub: LiveHub) -> None:
    """Hostile page numbers, revisions, paths and discussion numbers are answered with a 4xx (or a
    clamped page), never a 500."""
    repo = f"alice/{_name('rv-malformed')}"
    HfApi(endpoint=hub.url, token=hub.token).create_repo(repo)
    urls = [
        "/commits/main?p=-5",
        "/commits/main?p=999999999999999999",
        "/commits/main?p=99999999999999999999",
        "/commits/main?p=1e9",
        "/discussions?p=-1",
        "/discussions?p=999999999999999999",
        "/discussions?type=%00&status=%22%3E",
        "/discussions/0",
        "/discussions/-1",
        "/discussions/99999999999999999999999",
        "/discussions/1?p=999999999999999999",
        "/tree/main/%2E%2E",
        "/tree/main/a%2F..%2Fb",
        "/tree/main/%00",
        "/tree/%00",
        "/blob/main",
        "/blob/main/%E2%80%AE.txt",
        "/blob/main/.gitattributes/x",
        "/commit/zzzz",
        "/commit/" + "0" * 40,
        "/commit/" + "0" * 64,
        "/tree/" + "a" * 5000,
        "/tree/main/%FF",
    ]
    for url in urls:
        r = httpx.get(f"{hub.url}/{repo}{url}")
        assert r.status_code < 500, (url, r.status_code, r.text[:200])
    for query in ("sort=" + "x" * 5000, "search=%22%3E%3Cscript%3E"):
        r = httpx.get(f"{hub.url}/?{query}")
        assert r.status_code == 200 and "<script>" not in r.text
    # a NUL in any query value is refused before it reaches a handler (PostgreSQL text cannot hold one)
    r = httpx.get(f"{hub.url}/?sort=%00")
    assert r.status_code == 400 and r.json()["code"] == "usage"


def test_nul_in_a_search_is_a_client_error_on_every_backend(hub: LiveHub) -> None:
    """The path rejects NUL (``split_path``), but query values go to SQL as they are: PostgreSQL text
    cannot hold NUL, so ``/?search=%00`` (and ``/api/models?search=%00`` or ``?author=%00``, the same
    ``repos.list``) raise ``psycopg.DataError`` and answer 500 with a logged traceback, where SQLite
    answers 200. Any anonymous visitor can fill the error log of a PostgreSQL hub with one link; the
    answer should be a 4xx (or the value treated as matching nothing) on both backends."""
    for url in ("/?search=%00", "/?search=a%00b", "/api/models?search=%00", "/api/models?author=%00"):
        r = httpx.get(hub.url + url)
        assert r.status_code == 400 and r.json()["code"] == "usage", (url, r.status_code, r.text[:200])


def test_markdown_drops_every_unsafe_link_scheme() -> None:
    """READMEs and comments are Markdown with raw HTML off; links and images with script-capable schemes
    (in any case, entity-encoded, as autolinks or reference definitions) come out as text or not at all."""
    payloads = [
        "[a](javascript:alert(1))",
        "[a](JaVaScRiPt:alert(1))",
        "[a](javascript&colon;alert(1))",
        "[a](&#106;avascript:alert(1))",
        "[a](java%0ascript:alert(1))",
        "<javascript:alert(1)>",
        "[a][r]\n\n[r]: javascript:alert(1)",
        "[a](vbscript:x)",
        "[a](data:text/html,<script>x</script>)",
        "![i](data:image/svg+xml;base64,PHN2Zz4=)",
        "[a](file:///etc/passwd)",
        '<a href="javascript:x">a</a>',
        "<img src=x onerror=alert(1)>",
        "[a](<javascript:alert(1)>)",
    ]
    for text in payloads:
        html = render_markdown(text).lower()
        for bad in (
            'href="javascript',
            'href="vbscript',
            'href="data:',
            'src="data:image/svg',
            'href="file:',
        ):
            assert bad not in html, (text, html)
        assert "<img src=x" not in html, (text, html)


def test_raw_downloads_of_active_content_are_inert(hub: LiveHub) -> None:
    """``/resolve/`` serves uploaded bytes inline from the hub's origin; files a browser would run as a
    document (HTML, SVG, XHTML, XML, JS) must come back as plain text with ``nosniff``, else a raw file is
    stored XSS on the hub."""
    repo = f"alice/{_name('rv-raw')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    body = b"<html><script>alert(document.domain)</script><svg onload=alert(1)></svg></html>"
    names = ["x.html", "x.htm", "x.svg", "x.xhtml", "x.xml", "x.js", "x.mjs", "x.xsl", "x.shtml", "x.HTML"]
    api.create_commit(repo, [CommitOperationAdd(n, body) for n in names], commit_message="active")
    for n in names:
        r = httpx.get(f"{hub.url}/{repo}/resolve/main/{n}")
        assert r.status_code == 200, n
        assert r.headers["content-type"].startswith("text/plain"), (n, r.headers["content-type"])
        assert r.headers.get("x-content-type-options") == "nosniff", n


def test_hostile_names_titles_and_tensor_names_are_escaped(hub: LiveHub) -> None:
    """File and folder names, commit titles, discussion titles and comments, and safetensors tensor
    names and metadata reach the pages only escaped."""
    import json
    import struct

    repo = f"alice/{_name('rv-escape')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    xss = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    header = {
        xss: {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "__metadata__": {"format": xss},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    st = struct.pack("<Q", len(raw)) + raw + b"\0\0\0\0"
    api.create_commit(
        repo,
        [
            CommitOperationAdd(f'dir"><b>x/{xss[:30]}.txt', b"hi"),
            CommitOperationAdd("w.safetensors", st),
        ],
        commit_message=xss,
    )
    d = api.create_discussion(repo, title=xss, description=xss)
    pages = [
        f"/{repo}",
        f"/{repo}/commits/main",
        f"/{repo}/blob/main/w.safetensors",
        f"/{repo}/tree/main/" + 'dir"><b>x',
        f"/{repo}/discussions",
        f"/{repo}/discussions/{d.num}",
    ]
    for path in pages:
        r = httpx.get(hub.url + path)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        assert "<script>alert" not in r.text and "<img src=x" not in r.text and "<b>x" not in r.text, path


def test_dataset_pages_link_to_the_dataset(hub: LiveHub) -> None:
    """The templates build every link as ``/{{ repo }}/...``, the model URL space, so on the page of the
    dataset ``alice/x`` the file, folder, history and download links all lead to the *model*
    ``alice/x``: a 404, or, when a model of that name exists, another repo's files and history shown
    as if they were the dataset's (a private dataset's visitor sent to a different public model)."""
    name = _name("rv-ds")
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(f"alice/{name}", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n", path_in_repo="d/data.csv", repo_id=f"alice/{name}", repo_type="dataset"
    )
    api.create_repo(f"alice/{name}")  # a model of the same name
    for path in ("", "/tree/main/d", "/blob/main/d/data.csv", "/commits/main"):
        page = httpx.get(f"{hub.url}/datasets/alice/{name}{path}")
        assert page.status_code == 200, path
        repo_links = [h for h in _hrefs(page.text) if f"alice/{name}" in h]
        assert repo_links and all(h.startswith(f"/datasets/alice/{name}") for h in repo_links), (
            path,
            repo_links,
        )


def test_links_of_a_branch_with_a_slash_stay_on_that_branch(hub: LiveHub) -> None:
    """Templates write ``{{ rev | urlencode }}``, and Jinja's ``urlencode`` keeps ``/``. The router reads
    ``/blob/dev/x/a.txt`` as the shortest existing ref, so when branches ``dev`` and ``dev/x`` both exist
    every file, folder and history link on the ``dev/x`` pages opens ``dev`` instead: a visitor reading
    ``dev/x`` is shown another branch's bytes (or a 404) without notice. The router already accepts the
    revision as one ``dev%2Fx`` segment, which is what the links should send."""
    repo = f"alice/{_name('rv-slash-branch')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    api.create_branch(repo, branch="dev")
    api.create_branch(repo, branch="dev/x")
    api.upload_file(path_or_fileobj=b"on dev", path_in_repo="a.txt", repo_id=repo, revision="dev")
    api.upload_file(path_or_fileobj=b"on dev/x", path_in_repo="a.txt", repo_id=repo, revision="dev/x")
    page = httpx.get(f"{hub.url}/{repo}/tree/dev%2Fx")
    assert page.status_code == 200 and "<strong>dev/x</strong>" in page.text
    (link,) = [h for h in _hrefs(page.text) if "/blob/" in h and h.endswith("/a.txt")]
    view = httpx.get(hub.url + link)
    assert view.status_code == 200 and "<pre>on dev/x</pre>" in view.text, link


def test_bidi_controls_in_file_names_cannot_spoof_the_listing(hub: LiveHub) -> None:
    """``check_path`` rejects ASCII control characters but accepts Unicode bidi overrides (U+202E ...),
    and the listing prints names as they are. ``model\\u202esrotnesfas.pkl`` is a pickle that the page
    shows as ``model`` + ``lkp.safetensors``-style text: the extension a visitor reads is not the one
    the file has, on the very page meant to tell safe weights from pickles. Names should be shown with
    such characters made visible (or refused at upload)."""
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    name = _name("rv-bidi")
    repo = reg.repos.create(who, "model", "alice", name, private=False)
    blob = reg.ingest_bytes(b"not really safetensors", repo_id=repo.id)
    reg.commit(repo, "main", [AddFile("model\u202esrotnesfas.pkl", blob.sha256)], title="x", author="alice")
    page = httpx.get(f"{hub.url}/alice/{name}")
    assert page.status_code == 200 and "srotnesfas" in page.text
    assert "\u202e" not in page.text


def test_markdown_is_rendered_off_the_event_loop(hub: LiveHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registry call of the pages goes through ``ctx.call`` (the thread pool), and so does the
    tensor table; but ``render_markdown`` runs inline in the async handlers (``_top_of_repo``,
    ``discussion_page``). Rendering is pure-Python and slow on hostile input: the 512 KiB README
    preview made of ``![`` takes seconds, and for all that time the event loop serves no one: one
    anonymous request to a public repo page stalls every download, upload and API call of that hub
    process, and a few in a row take it down. Observed here without timing: a spy around the real
    renderer records whether it was called on the thread that runs the event loop."""
    import asyncio

    from cairn.hub import web, web_discussions

    on_loop: list[bool] = []
    real = web.render_markdown

    def spy(text: str) -> str:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(text)

    monkeypatch.setattr(web, "render_markdown", spy)
    monkeypatch.setattr(web_discussions, "render_markdown", spy)
    repo = f"alice/{_name('rv-md-loop')}"
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"# readme\n", path_in_repo="README.md", repo_id=repo)
    d = api.create_discussion(repo, title="a thread", description="a *comment*")
    assert httpx.get(f"{hub.url}/{repo}").status_code == 200
    assert httpx.get(f"{hub.url}/{repo}/discussions/{d.num}").status_code == 200
    assert len(on_loop) >= 2
    assert not any(on_loop)
