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
    assert "<script>alert" not in page.text and "notes/a b.txt" in page.text
    view = httpx.get(hub.url + "/alice/web-demo/blob/main/notes/a%20b.txt")
    assert view.status_code == 200 and "&lt;i&gt;plain&lt;/i&gt;" in view.text
    assert httpx.get(hub.url + "/alice/web-demo/blob/main/missing.txt").status_code == 404
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
