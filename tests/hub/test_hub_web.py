"""The server-rendered web UI: repo list with search, repo page with a safely rendered README, file view."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
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
    assert "<script>alert" not in page.text and 'href="/alice/web-demo/tree/main/notes"' in page.text
    folder = httpx.get(hub.url + "/alice/web-demo/tree/main/notes")
    assert folder.status_code == 200 and "a b.txt" in folder.text and "<article>" not in folder.text
    view = httpx.get(hub.url + "/alice/web-demo/blob/main/notes/a%20b.txt")
    assert view.status_code == 200 and "&lt;i&gt;plain&lt;/i&gt;" in view.text
    assert httpx.get(hub.url + "/alice/web-demo/blob/main/missing.txt").status_code == 404
    assert httpx.get(hub.url + "/alice/web-demo/tree/main/no-such-dir").status_code == 404
    assert httpx.get(hub.url + "/alice/web-demo/tree/no-such-branch").status_code == 404
    api.update_repo_settings("alice/web-demo", private=True)
    assert httpx.get(hub.url + "/alice/web-demo").status_code == 401
    assert "alice/web-demo" not in httpx.get(hub.url + "/").text


def test_fairness_results_show_on_the_model_page_and_in_model_info(hub: LiveHub, tmp_path: Path) -> None:
    """A card written by `cairn eval fairness` carries model-index results the hub shows as a table."""
    import numpy as np

    from cairn.evaluate import fairness
    from cairn.evaluate.record import model_index_result, update_model_card

    rng = np.random.default_rng(0)
    group = np.where(rng.random(400) < 0.5, "a", "b<script>")  # a hostile group name must stay escaped
    y_true = rng.integers(0, 2, 400)
    y_pred = np.where(group == "a", 1, y_true)  # a planted disparity
    report = fairness(y_true, y_pred, sensitive_features=group)
    update_model_card(
        tmp_path, model_index_result(report, dataset="toy", task_type="text-classification"), model_name="m"
    )
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/fair-demo")
    api.upload_folder(folder_path=tmp_path, repo_id="alice/fair-demo")
    info = api.model_info("alice/fair-demo")
    results = info.card_data.eval_results  # huggingface_hub parses model-index into EvalResult objects
    dp = next(r for r in results if r.metric_type == "demographic_parity_difference")
    assert dp.metric_value == pytest.approx(report.demographic_parity_difference, abs=1e-6)
    page = httpx.get(hub.url + "/alice/fair-demo").text
    assert "Evaluation results" in page and "toy" in page
    assert "b&lt;script&gt;" in page and "<script>" not in page


def _safetensors(n: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({f"layers.{i}.weight": np.zeros((3, 5), dtype=np.float32) for i in range(n)})


def test_model_page_shows_card_facts_trust_panels_and_per_file_verdicts(quarantine_hub: LiveHub) -> None:
    """The repo page carries what a visitor decides on: license, base model, parameters, signature, the
    license check, and each file's scan verdict; a flagged file's page lists its findings."""
    hub = quarantine_hub
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/web-trust")
    card = b"---\nlicense: apache-2.0\nbase_model: alice/web-base\ntags: [<b>tag</b>]\n---\n# Trust\n"
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id="alice/web-trust")
    api.upload_file(
        path_or_fileobj=_safetensors(3), path_in_repo="model.safetensors", repo_id="alice/web-trust"
    )
    evil = b"cos\nsystem\n(S'echo pwned'\ntR."  # a protocol-0 pickle calling os.system; only ever scanned
    api.upload_file(path_or_fileobj=evil, path_in_repo="extra/evil.pkl", repo_id="alice/web-trust")

    page = httpx.get(hub.url + "/alice/web-trust", headers={"authorization": f"Bearer {hub.token}"}).text
    assert "license: apache-2.0" in page and 'href="/alice/web-base"' in page
    assert "&lt;b&gt;tag&lt;/b&gt;" in page and "<b>tag</b>" not in page
    assert "1 file flagged" in page and ">45<" in page  # 3 tensors of 15 parameters
    assert "Signature" in page and ">none<" in page
    assert "License check" in page
    assert ">safe<" in page  # model.safetensors and README.md
    assert "1 file<" in page and ">1 flagged<" in page  # the extra/ folder row carries its flagged file

    folder = httpx.get(hub.url + "/alice/web-trust/tree/main/extra").text
    assert "evil.pkl" in folder and ">unsafe<" in folder and "1 finding" in folder

    view = httpx.get(hub.url + "/alice/web-trust/blob/main/extra/evil.pkl").text
    assert ">unsafe<" in view and "Findings" in view and "system" in view

    tensors = httpx.get(hub.url + "/alice/web-trust/blob/main/model.safetensors").text
    assert "Tensors" in tensors and "layers.2.weight" in tensors and "[3, 5]" in tensors
    assert "3 tensors" in tensors


def test_history_branches_and_commit_pages(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/web-history")
    api.upload_file(
        path_or_fileobj=b"one",
        path_in_repo="a.txt",
        repo_id="alice/web-history",
        commit_message="first <file>",
    )
    first = api.model_info("alice/web-history").sha
    api.upload_file(
        path_or_fileobj=b"two", path_in_repo="b.txt", repo_id="alice/web-history", commit_message="second"
    )
    api.create_branch("alice/web-history", branch="dev/x", revision=first)
    history = httpx.get(hub.url + "/alice/web-history/commits/main")
    assert history.status_code == 200
    assert history.text.index("second") < history.text.index("first &lt;file&gt;")
    assert f'href="/alice/web-history/commit/{first}"' in history.text
    old = httpx.get(f"{hub.url}/alice/web-history/commit/{first}").text
    assert "a.txt" in old and "b.txt" not in old
    dev = httpx.get(hub.url + "/alice/web-history/tree/dev/x").text  # a branch name with a slash
    assert "a.txt" in dev and "b.txt" not in dev and "<strong>dev/x</strong>" in dev
    assert "dev/x" in httpx.get(hub.url + "/alice/web-history").text  # the branch list
    file_by_tree = httpx.get(hub.url + "/alice/web-history/tree/main/b.txt")
    assert file_by_tree.status_code == 200 and "<pre>two</pre>" in file_by_tree.text


def test_hostile_card_fields_never_break_or_inject_into_the_page(hub: LiveHub) -> None:
    """Card fields of the wrong shape are skipped; strings are escaped; a bogus safetensors header shows
    no tensor table rather than an error page."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/web-hostile")
    card = (
        b"---\nlicense: [{a: 1}]\nbase_model: {x: y}\ndatasets: '\"><script>x</script>'\n"
        b"model-index: 7\nlanguage: [[1]]\n---\nhi\n"
    )
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id="alice/web-hostile")
    bogus = (10**12).to_bytes(8, "little") + b"{}"
    api.upload_file(path_or_fileobj=bogus, path_in_repo="bad.safetensors", repo_id="alice/web-hostile")
    page = httpx.get(hub.url + "/alice/web-hostile")
    assert page.status_code == 200 and "<script>x" not in page.text
    view = httpx.get(hub.url + "/alice/web-hostile/blob/main/bad.safetensors")
    assert view.status_code == 200 and "Tensors" not in view.text


def test_index_sorts_by_likes(hub: LiveHub) -> None:
    api = HfApi(endpoint=hub.url, token=hub.token)
    for name in ("web-sort-a", "web-sort-b"):
        api.create_repo(f"alice/{name}")
    httpx.post(
        hub.url + "/api/models/alice/web-sort-a/like", headers={"authorization": f"Bearer {hub.other_token}"}
    ).raise_for_status()
    text = httpx.get(hub.url + "/", params={"search": "web-sort", "sort": "likes"}).text
    assert text.index("alice/web-sort-a") < text.index("alice/web-sort-b")
    text = httpx.get(hub.url + "/", params={"search": "web-sort", "sort": "nonsense"}).text
    assert text.index("alice/web-sort-b") < text.index("alice/web-sort-a")  # newest first


def test_card_summary_takes_any_shape_and_drops_repeated_tags() -> None:
    from cairn.hub.web_views import card_summary, human_count, human_size, license_panel

    got = card_summary(
        {"license": "other", "license_name": "llama3", "base_model": ["a/b", {"x": 1}], "datasets": 5},
        ("text-generation", "chat", "chat", "license:other", "transformers"),
        ("text-generation", "transformers"),
    )
    assert got["license"] == "llama3" and got["base_models"] == ["a/b"] and got["datasets"] == []
    assert got["tags"] == ["chat"]
    assert human_size(999) == "999 B" and human_size(1_500_000) == "1.5 MB"
    assert human_count(7_241_732_096) == "7.24B" and human_count(512) == "512"
    assert license_panel({"licenseCheck": "not a dict"}) is None
    panel = license_panel({"licenseCheck": {"status": "conflict", "conflicts": [{"message": "x"}, 3]}})
    assert panel == {"status": "conflict", "license": "", "findings": [{"kind": "conflict", "message": "x"}]}
