"""The server-rendered web UI: repo list with search, repo page with a safely rendered README, file view."""

from __future__ import annotations

import httpx
from hub_testing import LiveHub
from huggingface_hub import HfApi

from cairn.hub.web import render_markdown

README = b"""---
license: mit
---
# Tiny <b>model</b>

<script>alert('x')</script>

[click](javascript:alert(1)) and **bold**
"""


def test_markdown_never_passes_raw_html() -> None:
    html = render_markdown(README.decode())
    assert "<script>" not in html and "<b>" not in html and 'href="javascript' not in html
    assert "<strong>bold</strong>" in html and "license: mit" not in html


def test_web_pages(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/web-demo")
    api.upload_file(path_or_fileobj=README, path_in_repo="README.md", repo_id="alice/web-demo")
    api.upload_file(path_or_fileobj=b"<i>plain</i>", path_in_repo="notes/a b.txt", repo_id="alice/web-demo")
    index = httpx.get(hub.url + "/", params={"search": "web-demo"})
    assert index.status_code == 200 and "alice/web-demo" in index.text
    assert "alice/web-demo" not in httpx.get(hub.url + "/", params={"search": "zzz-nothing"}).text
    page = httpx.get(hub.url + "/alice/web-demo")
    assert page.status_code == 200 and "<h1>Tiny &lt;b&gt;model&lt;/b&gt;</h1>" in page.text
    assert "<script>alert" not in page.text and "notes/a b.txt" in page.text
    view = httpx.get(hub.url + "/alice/web-demo/blob/main/notes/a%20b.txt")
    assert view.status_code == 200 and "&lt;i&gt;plain&lt;/i&gt;" in view.text
    assert httpx.get(hub.url + "/alice/web-demo/blob/main/missing.txt").status_code == 404
    api.update_repo_settings("alice/web-demo", private=True)
    assert httpx.get(hub.url + "/alice/web-demo").status_code == 401
    assert "alice/web-demo" not in httpx.get(hub.url + "/").text
