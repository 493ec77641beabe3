"""Discovery with the real ``huggingface_hub`` client: likes, sorting by likes/recency, and list filters
by license, base model, library, task, parameter count and scan status; lineage edges from cards."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.numpy import save as st_save

from cairn.registry import AddFile


def _card(**fields: str) -> bytes:
    return ("---\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + "---\n# card\n").encode()


def _ids(hub: LiveHub, **params: str) -> list[str]:
    r = httpx.get(f"{hub.url}/api/models", params={"search": "disco-", **params})
    assert r.status_code == 200, r.text
    return sorted(m["id"] for m in r.json())


@pytest.fixture(scope="module")
def catalogue(hub: LiveHub) -> LiveHub:
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/disco-base")
    api.create_commit(
        "alice/disco-base",
        [
            CommitOperationAdd("README.md", _card(license="apache-2.0", library_name="transformers")),
            CommitOperationAdd("model.safetensors", st_save({"w": np.zeros((1000, 1000), np.float16)})),
        ],
        commit_message="base",
    )
    api.create_repo("alice/disco-child")
    api.create_commit(
        "alice/disco-child",
        [
            CommitOperationAdd(
                "README.md",
                _card(
                    license="artistic-2.0",
                    base_model="alice/disco-base",
                    pipeline_tag="text-generation",
                    library_name="peft",
                    base_model_relation="adapter",
                ),
            ),
            CommitOperationAdd("adapter.safetensors", st_save({"a": np.zeros(10, np.float32)})),
        ],
        commit_message="child",
    )
    api.create_repo("alice/disco-empty")
    return hub


def test_filters_by_license_base_model_library_task(catalogue: LiveHub) -> None:
    hub = catalogue
    api = HfApi(endpoint=hub.url)
    assert [m.id for m in api.list_models(filter="license:artistic-2.0")] == ["alice/disco-child"]
    assert [m.id for m in api.list_models(filter="base_model:alice/disco-base")] == ["alice/disco-child"]
    assert [m.id for m in api.list_models(search="disco-", pipeline_tag="text-generation")] == [
        "alice/disco-child"
    ]
    assert _ids(hub, base_model="alice/disco-base") == ["alice/disco-child"]
    assert _ids(hub, library="transformers") == ["alice/disco-base"]
    assert _ids(hub, base_model="nobody/none") == []


def test_filters_by_parameter_count_and_scan_status(catalogue: LiveHub) -> None:
    hub = catalogue
    api = HfApi(endpoint=hub.url)
    assert [m.id for m in api.list_models(search="disco-", num_parameters="min:500K")] == ["alice/disco-base"]
    assert _ids(hub, num_parameters="max:1K") == ["alice/disco-child"]
    assert _ids(hub, num_parameters="min:1M,max:1M") == ["alice/disco-base"]  # exactly 1,000,000
    assert _ids(hub, scan_status="safe") == ["alice/disco-base", "alice/disco-child", "alice/disco-empty"]
    assert _ids(hub, scan_status="unsafe") == []
    for bad in ({"num_parameters": "lots"}, {"num_parameters": "between:1"}, {"scan_status": "fine"}):
        r = httpx.get(f"{hub.url}/api/models", params=bad)
        assert r.status_code == 400 and r.json()["code"] == "usage"


def test_likes_likers_and_sort(catalogue: LiveHub) -> None:
    hub = catalogue
    alice = HfApi(endpoint=hub.url, token=hub.token)
    like = f"{hub.url}/api/models/alice/disco-empty/like"
    assert httpx.post(like).status_code == 401
    assert httpx.post(f"{hub.url}/api/models/alice/nope/like", headers=_auth(hub.token)).status_code == 404
    for token in (hub.token, hub.other_token, hub.other_token):  # a second like by bob changes nothing
        assert httpx.post(like, headers=_auth(token)).status_code == 200
    assert alice.model_info("alice/disco-empty").likes == 2
    assert sorted(u.username for u in alice.list_repo_likers("alice/disco-empty")) == ["alice", "bob"]
    assert alice.list_liked_repos("bob").models == ["alice/disco-empty"]
    assert next(iter(alice.list_models(search="disco-", sort="likes"))).id == "alice/disco-empty"
    alice.unlike("alice/disco-empty")
    alice.unlike("alice/disco-empty")  # idempotent
    assert [u.username for u in alice.list_repo_likers("alice/disco-empty")] == ["bob"]
    assert alice.model_info("alice/disco-empty").likes == 1
    recent = [m.id for m in alice.list_models(search="disco-", sort="last_modified")]
    assert recent[-1] == "alice/disco-base"
    created = [m.id for m in alice.list_models(search="disco-", sort="created_at")]
    assert created == ["alice/disco-empty", "alice/disco-child", "alice/disco-base"]


def test_lineage_edges_are_recorded(catalogue: LiveHub) -> None:
    reg = catalogue.registry
    child = reg.repos.get("model", "alice", "disco-child", None, admin=True)
    edges = reg.discovery.lineage(child)
    assert [(e.base_model, e.relation) for e in edges] == [("alice/disco-base", "adapter")]
    assert reg.discovery.children("alice/disco-base") == [child.id]


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_license_check_runs_per_commit_along_hub_lineage(catalogue: LiveHub) -> None:
    hub = catalogue
    api = HfApi(endpoint=hub.url, token=hub.token)
    child = api.model_info("alice/disco-child")
    report = child.licenseCheck  # type: ignore[attr-defined]
    assert report["root"] == "alice/disco-child" and report["license"] == "artistic-2.0"
    assert report["decision"]["action"] in {"allow", "warn"}
    assert "apache-2.0" in [lic.lower() for lic in report["inherited"]]  # the base on this hub was read
    api.create_repo("alice/disco-nc-child")
    api.upload_file(
        path_or_fileobj=_card(license="mit", base_model="alice/disco-nc"),
        path_in_repo="README.md",
        repo_id="alice/disco-nc-child",
    )
    missing = api.model_info("alice/disco-nc-child").licenseCheck  # type: ignore[attr-defined]
    assert missing["status"] == "needs_review"
    assert any(f["code"] == "parent_not_found" for f in missing["needs_review"])
    reg = hub.registry  # the client refuses to send invalid YAML; commit it directly
    repo = reg.repos.get("model", "alice", "disco-nc-child", None)
    blob = reg.ingest_bytes(b"---\nlicense: [unclosed\n---\n", repo_id=repo.id)
    reg.commit(repo, "main", [AddFile("README.md", blob.sha256)], title="broken card", author="alice")
    broken = api.model_info("alice/disco-nc-child").licenseCheck  # type: ignore[attr-defined]
    assert broken["status"] in {"error", "needs_review"}


def test_likes_do_not_leak_private_repos(catalogue: LiveHub) -> None:
    hub = catalogue
    alice = HfApi(endpoint=hub.url, token=hub.token)
    alice.create_repo("alice/disco-secret", private=True)
    assert (
        httpx.post(f"{hub.url}/api/models/alice/disco-secret/like", headers=_auth(hub.token)).status_code
        == 200
    )
    bob_like = httpx.post(f"{hub.url}/api/models/alice/disco-secret/like", headers=_auth(hub.other_token))
    assert bob_like.status_code == 404  # exactly like a missing repo
    assert httpx.get(f"{hub.url}/api/models/alice/disco-secret/likers").status_code == 401
    assert "alice/disco-secret" in alice.list_liked_repos("alice").models
    seen_by_bob = httpx.get(f"{hub.url}/api/users/alice/likes", headers=_auth(hub.other_token)).json()
    assert "alice/disco-secret" not in [x["repo"]["name"] for x in seen_by_bob]
    security = httpx.get(f"{hub.url}/api/models/alice/disco-secret/security", headers=_auth(hub.other_token))
    assert security.status_code == 404
