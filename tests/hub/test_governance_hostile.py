"""Governance endpoints on a real hub (both backends) against hostile input: posted fingerprints with
non-finite numbers or names that are not Unicode text, gated repos through the lineage, fingerprint
and lineage-search endpoints, and ``cairn card --push`` to a tag or commit revision."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.numpy import save as st_save


@pytest.fixture(scope="module")
def dave(hub: LiveHub) -> str:
    hub.registry.users.create_user("dave-rv")
    return hub.registry.users.create_token("dave-rv")


@pytest.fixture(scope="module")
def gated(hub: LiveHub, dave: str) -> str:
    """dave-rv/rv-gated: a gated model (manual approval); bob has no access."""
    api = HfApi(endpoint=hub.url, token=dave)
    api.create_repo("dave-rv/rv-gated", exist_ok=True)
    rng = np.random.default_rng(5)
    w = {f"g.{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(4)}
    api.create_commit(
        "dave-rv/rv-gated", [CommitOperationAdd("model.safetensors", st_save(w))], commit_message="w"
    )
    api.update_repo_settings("dave-rv/rv-gated", gated="manual")
    return "dave-rv/rv-gated"


def _get(hub: LiveHub, path: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(hub.url + path, headers=headers, timeout=60)


@pytest.mark.parametrize("what", ["lineage", "fingerprint"])
def test_gated_repo_weight_data_needs_access(hub: LiveHub, gated: str, dave: str, what: str) -> None:
    owner_view = _get(hub, f"/api/models/{gated}/{what}", dave)
    assert owner_view.status_code == 200, owner_view.text
    for token in (None, hub.other_token):
        r = _get(hub, f"/api/models/{gated}/{what}", token)
        assert r.status_code in (401, 403), r.text


def test_gated_repo_is_not_a_lineage_search_candidate(hub: LiveHub, gated: str, dave: str) -> None:
    fp = _get(hub, f"/api/models/{gated}/fingerprint", dave).json()["tensors"]
    for token in (None, hub.other_token):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(
            f"{hub.url}/api/cairn/lineage-search", json={"tensors": fp}, headers=headers, timeout=60
        )
        assert r.status_code == 200, r.text
        assert gated not in [c["repo"] for c in r.json()["candidates"]]


@pytest.mark.parametrize(
    "field, value",
    [("nbytes", "Infinity"), ("shape", "[Infinity]"), ("nbytes", "1e400")],
)
def test_non_finite_numbers_in_a_posted_fingerprint_are_a_usage_error(
    hub: LiveHub, field: str, value: str
) -> None:
    """Python's json accepts Infinity (and 1e400 becomes inf), and int(inf) raises OverflowError: the
    hub must answer 400, not 500."""
    tensor: dict[str, Any] = {"dtype": "F32", "shape": [4], "nbytes": 16, "sha256": "0" * 64, "sketch": []}
    body = '{"tensors": {"x": ' + _with(tensor, field, value) + "}}"
    r = httpx.post(
        f"{hub.url}/api/cairn/lineage-search",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400, (r.status_code, r.text[:300])


def _with(tensor: dict[str, Any], field: str, raw: str) -> str:
    import json

    text = json.dumps({**tensor, field: "@@"})
    return text.replace('"@@"', raw)


def test_lone_surrogate_tensor_name_in_a_posted_fingerprint_is_not_a_500(hub: LiveHub) -> None:
    """arch_key(fp) encodes names as UTF-8: a posted name "\\ud800" must be a 400, not a 500."""
    body = (
        '{"tensors": {"x\\ud800": {"dtype": "F32", "shape": [4], "nbytes": 16, "sha256": "'
        + "0" * 64
        + '", "sketch": []}}}'
    )
    r = httpx.post(
        f"{hub.url}/api/cairn/lineage-search",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400, (r.status_code, r.text[:300])


def test_card_push_to_a_tag_or_commit_revision_does_not_create_a_branch(
    hub: LiveHub, dave: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cairn card org/name@v1 --push`` commits to ``/commit/v1`` on top of the tag's commit: the
    revision may be a tag or a commit id, not a branch. It should be refused (or go to main), never
    leave a new branch named after the tag or the commit id."""
    from cairn.cli.main import main

    api = HfApi(endpoint=hub.url, token=dave)
    api.create_repo("dave-rv/rv-card", exist_ok=True)
    rng = np.random.default_rng(6)
    w = {"a": rng.standard_normal((32, 32)).astype(np.float32)}
    api.create_commit(
        "dave-rv/rv-card", [CommitOperationAdd("model.safetensors", st_save(w))], commit_message="w"
    )
    api.create_tag("dave-rv/rv-card", tag="v1")
    sha = api.model_info("dave-rv/rv-card").sha
    assert sha is not None
    for rev in ("v1", sha):
        main(["card", f"dave-rv/rv-card@{rev}", "--push", "--endpoint", hub.url, "--token", dave, "--json"])
        capsys.readouterr()
    branches = {b.name for b in api.list_repo_refs("dave-rv/rv-card").branches}
    assert branches == {"main"}, branches
