"""``POST /api/cairn/lineage-search`` answers anonymous callers too, over public models only: a private
model never shows, and its existence changes nothing in the answer (not the candidates, their order or
their numbers), for anonymous callers, for users without read access and for a fine-grained token of
its own owner that is scoped to another repo. The owner's full token finds it (so the search would),
and once the repo is public everyone does."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.numpy import save as st_save

from cairn.governance.fingerprint import Fingerprint, StreamingFingerprint
from cairn.registry.models import TokenScope

OWNER = "ls-owner"


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"block.{i}.w": rng.standard_normal((48, 48)).astype(np.float32) for i in range(4)}


def _finetune(w: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32) for n, a in w.items()}


def _fingerprint(weights: dict[str, np.ndarray]) -> dict[str, Any]:
    data = st_save(weights)
    fp = StreamingFingerprint(len(data))
    fp.update(data)
    found = fp.result()
    assert isinstance(found, Fingerprint)
    return found.to_dict()


def _upload(hub: LiveHub, token: str, repo: str, weights: dict[str, np.ndarray], *, private: bool) -> None:
    api = HfApi(endpoint=hub.url, token=token)
    api.create_repo(repo, private=private, exist_ok=True)
    api.create_commit(
        repo, [CommitOperationAdd("model.safetensors", st_save(weights))], commit_message="weights"
    )


def _search(hub: LiveHub, tensors: dict[str, Any], token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(
        f"{hub.url}/api/cairn/lineage-search", json={"tensors": tensors}, headers=headers, timeout=60
    )
    assert r.status_code == 200, r.text
    return r


def _repos(r: httpx.Response) -> list[str]:
    return [c["repo"] for c in r.json()["candidates"]]


def test_private_models_do_not_leak_through_lineage_search(hub: LiveHub) -> None:
    reg = hub.registry
    reg.users.create_user(OWNER)
    owner = reg.users.create_token(OWNER)
    scoped = reg.users.create_token(
        OWNER, role="read", scopes=(TokenScope("repo", f"{OWNER}/ls-public-ft", "read"),)
    )
    base = _weights(101)
    _upload(hub, owner, f"{OWNER}/ls-public-ft", _finetune(base, 1), private=False)
    query = _fingerprint(_finetune(base, 2))  # a local fine-tune of the (soon) private base
    callers = {"anonymous": None, "no access": hub.other_token, "scoped elsewhere": scoped}
    before = {who: _search(hub, query, token).text for who, token in callers.items()}
    assert f"{OWNER}/ls-public-ft" in _repos(_search(hub, query, None))  # the search finds public kin

    _upload(hub, owner, f"{OWNER}/ls-secret-base", base, private=True)
    assert f"{OWNER}/ls-secret-base" in _repos(_search(hub, query, owner))  # it would be found
    for who, token in callers.items():
        after = _search(hub, query, token)
        assert after.text == before[who], who  # byte for byte: not a candidate, no trace of it
        assert "ls-secret-base" not in after.text, who
    # nor through the lineage of the public fine-tune (undeclared likely parents)
    for who, token in callers.items():
        headers = {"authorization": f"Bearer {token}"} if token else {}
        r = httpx.get(f"{hub.url}/api/models/{OWNER}/ls-public-ft/lineage", headers=headers, timeout=60)
        assert r.status_code == 200 and "ls-secret-base" not in r.text, who

    HfApi(endpoint=hub.url, token=owner).update_repo_settings(f"{OWNER}/ls-secret-base", private=False)
    for who, token in callers.items():  # visibility was the only thing that kept it out
        assert f"{OWNER}/ls-secret-base" in _repos(_search(hub, query, token)), who
