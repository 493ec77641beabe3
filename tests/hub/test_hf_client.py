"""The real ``huggingface_hub`` client against a running hub, over every backend pair."""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from pathlib import Path

import pytest
from hub_testing import LiveHub
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def _api(hub: LiveHub, token: str | None = None) -> HfApi:
    return HfApi(endpoint=hub.url, token=token or hub.token)


def test_whoami_and_bad_token(hub: LiveHub) -> None:
    assert _api(hub).whoami()["name"] == "alice"
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=hub.url, token="cairn_not-a-token").whoami()


def test_upload_and_download_round_trip(hub: LiveHub, tmp_path: Path, cache_dir: Path) -> None:
    api = _api(hub)
    url = api.create_repo("alice/rt")
    assert str(url).startswith(hub.url)
    api.create_repo("alice/rt", exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_repo("alice/rt")
    weights = bytes(range(256)) * 4096  # 1 MiB binary -> LFS batch path
    folder = tmp_path / "up"
    (folder / "sub dir").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "sub dir" / "model.safetensors").write_bytes(weights)
    (folder / "sub dir" / "naïve #1.txt").write_text("unicode name")
    info = api.upload_folder(repo_id="alice/rt", folder_path=folder, commit_message="first")
    assert len(info.oid) == 40
    files = api.list_repo_files("alice/rt")
    assert set(files) == {
        ".gitattributes",
        "config.json",
        "sub dir/model.safetensors",
        "sub dir/naïve #1.txt",
    }
    got = hf_hub_download(
        "alice/rt", "sub dir/model.safetensors", endpoint=hub.url, cache_dir=cache_dir, token=hub.token
    )
    assert Path(got).read_bytes() == weights
    assert Path(got).resolve().name == hashlib.sha256(weights).hexdigest()  # LFS etag is the sha256
    uni = hf_hub_download("alice/rt", "sub dir/naïve #1.txt", endpoint=hub.url, cache_dir=cache_dir)
    assert Path(uni).read_text() == "unicode name"
    snap = snapshot_download("alice/rt", endpoint=hub.url, cache_dir=cache_dir, revision=info.oid)
    assert (Path(snap) / "config.json").read_text() == '{"model_type": "bert"}'
    local = snapshot_download(
        "alice/rt", endpoint=hub.url, local_dir=tmp_path / "ld", allow_patterns=["*.json"]
    )
    assert sorted(p.name for p in Path(local).iterdir() if not p.name.startswith(".")) == ["config.json"]
    model = api.model_info("alice/rt", files_metadata=True)
    assert model.sha == info.oid
    by_name = {s.rfilename: s for s in model.siblings or []}
    assert by_name["sub dir/model.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()  # type: ignore[union-attr]
    assert "bert" in (model.tags or [])


def test_commit_ops_branches_tags_and_revisions(hub: LiveHub, cache_dir: Path) -> None:
    api = _api(hub)
    api.create_repo("alice/ops")
    c1 = api.create_commit(
        "alice/ops",
        [
            CommitOperationAdd("a.txt", b"one"),
            CommitOperationAdd("logs/x.txt", b"x"),
            CommitOperationAdd("w.bin", b"\0" * 2048),
        ],
        commit_message="c1",
    )
    api.create_branch("alice/ops", branch="dev/x", revision=c1.oid)
    api.create_branch("alice/ops", branch="dev/x", exist_ok=True)
    api.create_tag("alice/ops", tag="v1", revision=c1.oid)
    c2 = api.create_commit(
        "alice/ops",
        [
            CommitOperationDelete("logs/"),
            CommitOperationAdd("a.txt", b"two"),
            CommitOperationCopy("w.bin", "w2.bin"),
        ],
        commit_message="c2",
        revision="dev/x",
    )
    assert set(api.list_repo_files("alice/ops", revision="dev/x")) == {
        ".gitattributes",
        "a.txt",
        "w.bin",
        "w2.bin",
    }
    for rev, want in (
        ("v1", b"one"),
        (c1.oid, b"one"),
        (c1.oid[:8], b"one"),
        ("dev/x", b"two"),
        (c2.oid, b"two"),
    ):
        path = hf_hub_download("alice/ops", "a.txt", revision=rev, endpoint=hub.url, cache_dir=cache_dir)
        assert Path(path).read_bytes() == want, rev
    refs = api.list_repo_refs("alice/ops")
    assert {b.name for b in refs.branches} == {"main", "dev/x"} and [t.name for t in refs.tags] == ["v1"]
    commits = api.list_repo_commits("alice/ops", revision="dev/x")  # pages of 3 with Link
    assert [c.title for c in commits][:2] == ["c2", "c1"] and len(commits) == 3
    api.delete_tag("alice/ops", tag="v1")
    api.delete_branch("alice/ops", branch="dev/x")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/ops", "a.txt", revision="dev/x", endpoint=hub.url, cache_dir=cache_dir)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("alice/ops", "missing.txt", endpoint=hub.url, cache_dir=cache_dir)
    with pytest.raises(EntryNotFoundError):
        api.create_commit("alice/ops", [CommitOperationDelete("nope.txt")], commit_message="x")
    tree = list(api.list_repo_tree("alice/ops", recursive=True))  # more than one page of 3
    assert {t.path for t in tree} == {".gitattributes", "a.txt", "logs", "logs/x.txt", "w.bin"}
    infos = api.get_paths_info("alice/ops", ["a.txt", "logs", "missing"])
    assert {i.path for i in infos} == {"a.txt", "logs"}


def test_private_repos_are_indistinguishable_from_missing(hub: LiveHub, cache_dir: Path) -> None:
    api = _api(hub)
    api.create_repo("alice/hidden", private=True)
    api.upload_file(path_or_fileobj=b"s", path_in_repo="s.txt", repo_id="alice/hidden")
    for token in (None, hub.other_token):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=token or False).model_info("alice/hidden")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "alice/hidden", "s.txt", endpoint=hub.url, cache_dir=cache_dir, token=token or False
            )
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=token or False).model_info("alice/never-existed")
    assert not HfApi(endpoint=hub.url, token=False).repo_exists("alice/hidden")
    assert api.repo_exists("alice/hidden")
    api.update_repo_settings("alice/hidden", private=False)
    assert HfApi(endpoint=hub.url, token=False).repo_exists("alice/hidden")
    with pytest.raises(HfHubHTTPError) as err:  # bob may read but not write
        HfApi(endpoint=hub.url, token=hub.other_token).upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/hidden"
        )
    assert err.value.response.status_code == 403
    api.delete_repo("alice/hidden")
    api.delete_repo("alice/hidden", missing_ok=True)
    assert not api.repo_exists("alice/hidden")


def test_list_models_search_filter_sort_and_paging(hub: LiveHub, tmp_path: Path) -> None:
    api = _api(hub)
    for i in range(5):
        api.create_repo(f"alice/lm-bert-{i}")
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n# card\n",
        path_in_repo="README.md",
        repo_id="alice/lm-bert-3",
    )
    names = [m.id for m in api.list_models(search="lm-bert", sort="created_at")]
    assert names == [f"alice/lm-bert-{i}" for i in range(4, -1, -1)]  # 5 results across pages of 3
    assert [m.id for m in api.list_models(search="LM-BERT", limit=2)] == names[:2]
    # the session hub is shared with other test modules: narrow every listing to this test's repos
    assert [m.id for m in api.list_models(search="lm-bert", filter="license:mit")] == ["alice/lm-bert-3"]
    assert [m.id for m in api.list_models(author="bob", search="lm-bert")] == []
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/lm-bert-1")
    hf_hub_download(
        "alice/lm-bert-1", "config.json", endpoint=hub.url, cache_dir=tmp_path
    )  # HEAD + GET: one download
    deadline = time.monotonic() + 5
    while api.model_info("alice/lm-bert-1").downloads != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.model_info("alice/lm-bert-1").downloads == 1
    assert next(iter(api.list_models(search="lm-bert", sort="downloads"))).id == "alice/lm-bert-1"


def test_concurrent_commits_one_wins(hub: LiveHub) -> None:
    api = _api(hub)
    api.create_repo("alice/race")
    base = api.model_info("alice/race").sha

    def push(i: int) -> str:
        return api.create_commit(
            "alice/race",
            [CommitOperationAdd(f"f{i}.txt", str(i).encode())],
            commit_message=f"c{i}",
            parent_commit=base,
        ).oid

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(push, i) for i in range(4)]
    ok = [f for f in futures if f.exception() is None]
    assert len(ok) == 1
    for f in futures:
        if f.exception() is not None:
            assert isinstance(f.exception(), HfHubHTTPError)
            assert f.exception().response.status_code == 412  # type: ignore[union-attr]
    assert api.model_info("alice/race").sha == ok[0].result()
    assert len(api.list_repo_files("alice/race")) == 2


def test_gated_repo(hub: LiveHub, cache_dir: Path) -> None:
    from huggingface_hub.errors import GatedRepoError

    api = _api(hub)
    api.create_repo("alice/gated")
    api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.txt", repo_id="alice/gated")
    api.update_repo_settings("alice/gated", gated="auto")
    bob = HfApi(endpoint=hub.url, token=hub.other_token)
    assert bob.model_info("alice/gated").gated == "auto"  # metadata stays visible
    assert bob.repo_exists("alice/gated")
    for token in (hub.other_token, False):
        with pytest.raises(GatedRepoError):
            hf_hub_download("alice/gated", "w.txt", endpoint=hub.url, cache_dir=cache_dir, token=token)
    with pytest.raises(GatedRepoError):
        bob.list_repo_files("alice/gated")
    repo = hub.registry.repos.get("model", "alice", "gated", None)
    hub.registry.repos.grant_access(repo, "bob")
    path = hf_hub_download(
        "alice/gated", "w.txt", endpoint=hub.url, cache_dir=cache_dir, token=hub.other_token
    )
    assert Path(path).read_bytes() == b"weights"
    assert Path(
        hf_hub_download("alice/gated", "w.txt", endpoint=hub.url, cache_dir=cache_dir / "o", token=hub.token)
    ).exists()


def test_dataset_repos_use_the_same_machinery(hub: LiveHub, cache_dir: Path) -> None:
    api = _api(hub)
    url = api.create_repo("alice/ds", repo_type="dataset")
    assert str(url) == f"{hub.url}/datasets/alice/ds"
    api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id="alice/ds", repo_type="dataset"
    )
    assert "data/train.csv" in api.list_repo_files("alice/ds", repo_type="dataset")
    path = hf_hub_download(
        "alice/ds", "data/train.csv", repo_type="dataset", endpoint=hub.url, cache_dir=cache_dir
    )
    assert Path(path).read_bytes() == b"a,b\n1,2\n"
    assert api.dataset_info("alice/ds").id == "alice/ds"
    assert [d.id for d in api.list_datasets(author="alice", search="alice/ds")] == ["alice/ds"]
    assert "alice/ds" not in [m.id for m in api.list_models(author="alice")]
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/ds")  # a dataset is not a model


def test_move_repo_redirects_old_urls(hub: LiveHub, cache_dir: Path) -> None:
    api = _api(hub)
    api.create_repo("alice/old-name")
    api.upload_file(path_or_fileobj=b"moved", path_in_repo="f.txt", repo_id="alice/old-name")
    api.move_repo("alice/old-name", "alice/new-name")
    assert api.model_info("alice/new-name").id == "alice/new-name"
    # old download URLs keep working through a same-origin redirect the client follows
    path = hf_hub_download("alice/old-name", "f.txt", endpoint=hub.url, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"moved"
    api.create_repo("alice/taken")
    with pytest.raises(HfHubHTTPError):
        api.move_repo("alice/new-name", "alice/taken")
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=hub.url, token=hub.other_token).move_repo("alice/new-name", "bob/stolen")


def test_organisations_share_a_namespace(hub: LiveHub) -> None:
    hub.registry.users.create_org("acme", ["alice"])
    alice, bob = _api(hub), HfApi(endpoint=hub.url, token=hub.other_token)
    assert [o["name"] for o in alice.whoami()["orgs"]] == ["acme"]
    assert bob.whoami()["orgs"] == []
    alice.create_repo("acme/shared", private=True)
    alice.upload_file(path_or_fileobj=b"team", path_in_repo="t.txt", repo_id="acme/shared")
    with pytest.raises(RepositoryNotFoundError):
        bob.model_info("acme/shared")
    with pytest.raises(HfHubHTTPError):
        bob.create_repo("acme/intruder")
    hub.registry.users.add_member("acme", "bob")
    assert bob.model_info("acme/shared").private
    assert "acme/shared" in [m.id for m in bob.list_models(author="acme")]
    from cairn.registry import AlreadyExistsError

    with pytest.raises(AlreadyExistsError):
        hub.registry.users.create_user("acme")  # an organisation's name is taken for users too


def test_get_safetensors_metadata_of_single_and_sharded_repos(hub: LiveHub) -> None:
    """huggingface_hub reads tensor listings with Range requests on the header (bytes=0-100000 even on
    tiny files, clipped at EOF) and, for sharded repos, through the index file."""
    import json

    import numpy as np
    from safetensors.numpy import save

    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/st-meta-single")
    one = save({"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float16)}, metadata={"format": "np"})
    api.upload_file(path_or_fileobj=one, path_in_repo="model.safetensors", repo_id="alice/st-meta-single")
    meta = api.get_safetensors_metadata("alice/st-meta-single")
    assert not meta.sharded and meta.parameter_count == {"F32": 6, "F16": 3}
    assert meta.files_metadata["model.safetensors"].metadata == {"format": "np"}

    api.create_repo("alice/st-meta-sharded")
    shards = {
        "model-00001-of-00002.safetensors": save({"a": np.zeros((4, 4), np.float32)}),
        "model-00002-of-00002.safetensors": save({"b": np.zeros(5, np.int64)}),
    }
    index = {
        "metadata": {"total_size": 104},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    ops = [CommitOperationAdd(name, data) for name, data in shards.items()]
    ops.append(CommitOperationAdd("model.safetensors.index.json", json.dumps(index).encode()))
    api.create_commit("alice/st-meta-sharded", ops, commit_message="shards")
    meta = api.get_safetensors_metadata("alice/st-meta-sharded")
    assert meta.sharded and meta.weight_map == index["weight_map"]
    assert meta.parameter_count == {"F32": 16, "I64": 5}


def test_tree_expand_names_each_files_last_commit(hub: LiveHub) -> None:
    """``list_repo_tree(expand=True)``: every file's ``last_commit`` is the commit that last changed it."""
    api = HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/expand-last")
    first = api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id="alice/expand-last").oid
    second = api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="alice/expand-last").oid
    third = api.upload_file(path_or_fileobj=b"a2", path_in_repo="a.txt", repo_id="alice/expand-last").oid
    assert first != third
    found = {f.path: f for f in api.list_repo_tree("alice/expand-last", expand=True)}
    assert found["a.txt"].last_commit.oid == third  # type: ignore[union-attr]
    assert found["b.txt"].last_commit.oid == second  # type: ignore[union-attr]
    assert found["a.txt"].last_commit.title  # type: ignore[union-attr]
