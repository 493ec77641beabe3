"""What the web pages promise beyond the review's reproductions (tests/hub/test_web_review.py): the
security headers on every page kind, the quarantine rule on commit and compare diffs and its release,
bidi escapes on the history and commit pages, the folder cap's note, repo-type links on every page, the
Markdown cut, card links, NUL in list-valued query parameters and huge history cursors."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import httpx
from hub_testing import LiveHub
from huggingface_hub import HfApi, hf_hub_download

from cairn.hub.web import HTML_HEADERS, MAX_FOLDER_ROWS, MAX_MARKDOWN_CHARS, render_markdown
from cairn.hub.web_views import repo_link
from cairn.registry import AddFile

_MARKER = "hardening-marker-51c2"
EVIL_TEXT = f"S'{_MARKER}'\n0cos\nsystem\n(S'echo pwned'\ntR.".encode()  # scanned only, never loaded


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_every_html_page_kind_sends_the_security_headers(hub: LiveHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = f"alice/{_name('hdr')}"
    api.create_repo(repo)
    first = api.upload_file(path_or_fileobj=b"one\n", path_in_repo="d/a.txt", repo_id=repo).oid
    second = api.upload_file(path_or_fileobj=b"two\n", path_in_repo="d/a.txt", repo_id=repo).oid
    d = api.create_discussion(repo, title="a thread", description="d")
    pages = {
        "/": 200,
        f"/{repo}": 200,
        f"/{repo}/tree/main/d": 200,
        f"/{repo}/blob/main/d/a.txt": 200,
        f"/{repo}/commits/main": 200,
        f"/{repo}/commit/{second}": 200,
        f"/{repo}/compare/{first}...{second}": 200,
        f"/{repo}/discussions": 200,
        f"/{repo}/discussions/{d.num}": 200,
        f"/{repo}/blob/main/missing.txt": 404,  # the HTML not-found page
    }
    for path, status in pages.items():
        r = httpx.get(hub.url + path)
        assert r.status_code == status and r.headers["content-type"].startswith("text/html"), path
        for name, value in HTML_HEADERS.items():
            assert r.headers.get(name) == value, (path, name)
    csp = HTML_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    # the API and downloads keep their own headers, and the real client still works against them
    api_answer = httpx.get(f"{hub.url}/api/models/{repo}")
    assert api_answer.status_code == 200 and "x-frame-options" not in api_answer.headers
    raw = httpx.get(f"{hub.url}/{repo}/resolve/main/d/a.txt")
    assert raw.headers["content-security-policy"] == "sandbox" and raw.text == "two\n"
    assert api.model_info(repo).sha == second
    path = hf_hub_download(repo, "d/a.txt", cache_dir=tmp_path, endpoint=hub.url)
    assert Path(path).read_bytes() == b"two\n"


def test_quarantined_text_is_not_diffed_until_released(quarantine_hub: LiveHub) -> None:
    hub = quarantine_hub
    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = f"alice/{_name('q-diff')}"
    api.create_repo(repo)
    base = api.upload_file(path_or_fileobj=b"harmless\n", path_in_repo="notes.txt", repo_id=repo).oid
    head = api.upload_file(path_or_fileobj=EVIL_TEXT, path_in_repo="notes.txt", repo_id=repo).oid
    assert httpx.get(f"{hub.url}/{repo}/resolve/main/notes.txt").status_code == 403
    for path in (f"/commit/{head}", f"/compare/{base}...{head}", "/blob/main/notes.txt"):
        page = httpx.get(f"{hub.url}/{repo}{path}")
        assert page.status_code == 200 and "notes.txt" in page.text, path
        assert _MARKER not in page.text, path
    reg = hub.registry
    info = reg.repos.get("model", "alice", repo.split("/")[1], reg.users.authenticate(hub.token))
    (entry,) = [e for e in reg.commits.files(head) if e.path == "notes.txt"]
    reg.trust.release(info, entry.sha256, by="admin")
    assert httpx.get(f"{hub.url}/{repo}/resolve/main/notes.txt").status_code == 200
    for path in (f"/commit/{head}", "/blob/main/notes.txt"):
        assert _MARKER in httpx.get(f"{hub.url}/{repo}{path}").text, path  # the same rule lets it through


def test_bidi_controls_are_escaped_on_history_commit_and_file_pages(hub: LiveHub) -> None:
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    name = _name("bidi-pages")
    repo = reg.repos.create(who, "model", "alice", name, private=False)
    blob = reg.ingest_bytes(b"text", repo_id=repo.id)
    path = "d\u2067ir/evil\u202etxt.exe"
    c = reg.commit(repo, "main", [AddFile(path, blob.sha256)], title="add \u202eexe.txt", author="alice")
    quoted = "d%E2%81%A7ir/evil%E2%80%AEtxt.exe"
    for page in ("", "/tree/main/d%E2%81%A7ir", "/commits/main", f"/commit/{c.id}", f"/blob/main/{quoted}"):
        r = httpx.get(f"{hub.url}/alice/{name}{page}")
        assert r.status_code == 200, page
        assert "\u202e" not in r.text and "\u2067" not in r.text, page
        assert "\\u202e" in r.text or "\\u2067" in r.text, page
    listing = httpx.get(f"{hub.url}/alice/{name}/tree/main/d%E2%81%A7ir").text
    (link,) = [h for h in _hrefs(listing) if "/blob/" in h]
    assert httpx.get(hub.url + link).status_code == 200  # the link keeps the real name


def test_a_capped_folder_says_how_many_entries_it_leaves_out(hub: LiveHub) -> None:
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    name = _name("cap")
    repo = reg.repos.create(who, "model", "alice", name, private=False)
    blob = reg.ingest_bytes(b"x", repo_id=repo.id)
    ops = [AddFile(f"big/sub{i}/f.txt", blob.sha256) for i in range(3)]
    ops += [AddFile(f"big/f{i:05d}.txt", blob.sha256) for i in range(MAX_FOLDER_ROWS + 2)]
    reg.commit(repo, "main", ops, title="many", author="alice")
    page = httpx.get(f"{hub.url}/alice/{name}/tree/main/big").text
    rows = page.count(f'href="/alice/{name}/blob/main/big/f') + page.count(
        f'href="/alice/{name}/tree/main/big/sub'
    )
    assert rows == MAX_FOLDER_ROWS and "5 more entries not listed" in page
    assert page.count(f'href="/alice/{name}/tree/main/big/sub') == 3  # folders first
    small = httpx.get(f"{hub.url}/alice/{name}/tree/main/big/sub0").text
    assert "more entr" not in small


def test_dataset_commit_compare_and_discussion_pages_link_to_the_dataset(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    name = _name("ds-links")
    repo = f"alice/{name}"
    api.create_repo(repo, repo_type="dataset")
    first = api.upload_file(
        path_or_fileobj=b"a\n", path_in_repo="x.csv", repo_id=repo, repo_type="dataset"
    ).oid
    second = api.upload_file(
        path_or_fileobj=b"b\n", path_in_repo="x.csv", repo_id=repo, repo_type="dataset"
    ).oid
    d = api.create_discussion(repo, title="a thread", description="d", repo_type="dataset")
    for path in (
        f"/commit/{second}",
        f"/compare/{first}...{second}",
        "/discussions",
        f"/discussions/{d.num}",
    ):
        page = httpx.get(f"{hub.url}/datasets/{repo}{path}")
        assert page.status_code == 200, path
        links = [h for h in _hrefs(page.text) if name in h]
        assert links and all(h.startswith(f"/datasets/{repo}") for h in links), (path, links)


def test_markdown_is_cut_at_the_limit_with_a_note() -> None:
    text = "word " * (MAX_MARKDOWN_CHARS // 5 + 1000) + "TAIL-MARK"
    html = render_markdown(text)
    assert "TAIL-MARK" not in html and f"Cut at {MAX_MARKDOWN_CHARS:,} characters" in html
    assert "Cut at" not in render_markdown("short *text*")


def test_only_valid_repo_ids_become_card_links() -> None:
    assert repo_link("meta-llama/Llama-3.1-8B") == "/meta-llama/Llama-3.1-8B"
    assert repo_link("squad/v2", "datasets/") == "/datasets/squad/v2"
    for bad in (
        "/evil.example/x",
        "\\evil.example/x",
        "//evil",
        "gpt2",
        "a/b/c",
        "a/..",
        "a/b c",
        "ja/va\x00",
    ):
        assert repo_link(bad) is None, bad


def test_nul_in_a_list_valued_query_parameter_is_a_400(hub: LiveHub) -> None:
    for url in ("/api/models?filter=%00", "/api/models?expand=a%00", "/api/models?filter[]=x%00"):
        r = httpx.get(hub.url + url)
        assert r.status_code == 400 and r.json()["code"] == "usage", url


def test_a_history_cursor_past_any_chain_is_an_empty_page(hub: LiveHub) -> None:
    repo = f"alice/{_name('deep-cursor')}"
    HfApi(endpoint=hub.url, token=hub.token).create_repo(repo)
    for offset in (1 << 31, (1 << 62) - 1):
        cursor = base64.urlsafe_b64encode(json.dumps(offset).encode()).decode().rstrip("=")
        r = httpx.get(f"{hub.url}/api/models/{repo}/commits/main", params={"cursor": cursor})
        assert r.status_code == 200 and r.json() == [], offset
    page = httpx.get(f"{hub.url}/{repo}/commits/main", params={"p": str(10**17)})
    assert page.status_code == 200 and "newer" in page.text


def test_a_permanently_deleted_file_shows_no_contents(hub: LiveHub) -> None:
    """Deleted without rewriting history: the commit still names the file, the download answers 410,
    and the page says so instead of reading the tensor table from the bytes."""
    import numpy as np
    from safetensors.numpy import save

    api = HfApi(endpoint=hub.url, token=hub.token)
    repo = f"alice/{_name('deleted')}"
    api.create_repo(repo)
    weights = save({"secret_tensor_name": np.zeros(4, dtype=np.float32)})
    api.upload_file(path_or_fileobj=weights, path_in_repo="w.safetensors", repo_id=repo)
    assert "secret_tensor_name" in httpx.get(f"{hub.url}/{repo}/blob/main/w.safetensors").text
    (entry,) = list(api.list_lfs_files(repo))
    api.permanently_delete_lfs_files(repo, [entry], rewrite_history=False)
    assert httpx.get(f"{hub.url}/{repo}/resolve/main/w.safetensors").status_code == 410
    page = httpx.get(f"{hub.url}/{repo}/blob/main/w.safetensors")
    assert page.status_code == 200 and "permanently deleted" in page.text
    assert "secret_tensor_name" not in page.text
