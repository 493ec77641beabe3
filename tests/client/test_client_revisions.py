"""Revisions (branch, tag, commit id), include/exclude globs, unchanged and deduplicated uploads."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from client_testing import ClientHub
from test_client_roundtrip import files_of, make_model_dir

from cairn.client import RevisionNotFoundError, parse_repo_ref, pull, push
from cairn.errors import UsageError


@pytest.fixture(scope="module")
def history(client_hub: ClientHub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A repo with main at v2, tag v1 at the first push, and branch dev with an extra file."""
    root = tmp_path_factory.mktemp("history")
    repo = f"alice/rev-{uuid.uuid4().hex[:8]}"
    src = make_model_dir(root / "src", seed=11)
    first = push(src, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token, create=True)
    headers = {"authorization": f"Bearer {client_hub.token}"}
    r = httpx.post(f"{client_hub.url}/api/models/{repo}/tag/main", json={"tag": "v1"}, headers=headers)
    assert r.status_code == 200, r.text
    (src / "config.json").write_text('{"model_type": "tiny", "version": 2}')
    second = push(src, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token)
    (src / "extra.txt").write_text("only on dev\n")
    dev = push(src, parse_repo_ref(f"{repo}@dev"), endpoint=client_hub.url, token=client_hub.token)
    return {"repo": repo, "first": first, "second": second, "dev": dev}


def test_push_reports_unchanged_inlined_and_new_files(history: dict[str, object]) -> None:
    second, dev = history["second"], history["dev"]
    status = {f.path: f.status for f in second.files}  # type: ignore[attr-defined]
    assert status["config.json"] == "inlined"
    assert status["model.safetensors"] == "unchanged" and status["sub/blob.bin"] == "unchanged"
    assert {f.path: f.status for f in dev.files}["extra.txt"] == "inlined"  # type: ignore[attr-defined]
    assert dev.revision == "dev" and dev.committed  # type: ignore[attr-defined]


def test_pushing_identical_tree_makes_no_commit(
    client_hub: ClientHub, history: dict[str, object], tmp_path: Path
) -> None:
    repo = str(history["repo"])
    out = pull(
        parse_repo_ref(repo),
        endpoint=client_hub.url,
        token=None,
        cache_dir=tmp_path / "c",
        directory=tmp_path / "d",
    )
    again = push(out.directory, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token)
    assert not again.committed and again.commit == out.commit
    assert {f.status for f in again.files} == {"unchanged"}


def test_lfs_bytes_dedupe_within_a_repo_and_are_proven_across_repos(
    client_hub: ClientHub, history: dict[str, object], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    first = pull(
        parse_repo_ref(str(history["repo"])), endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c"
    )
    data = (first.snapshot / "model.safetensors").read_bytes()
    (copy / "renamed.safetensors").write_bytes(data)
    # another repo must prove it has the bytes (the hub never lets a repo reference blobs by hash alone)
    repo = f"alice/dedup-{uuid.uuid4().hex[:8]}"
    done = push(copy, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token, create=True)
    assert done.uploaded_bytes == len(data)
    # within that repo the same bytes under a new name are not sent again
    (copy / "renamed.safetensors").rename(copy / "again.safetensors")
    again = push(copy, parse_repo_ref(repo), endpoint=client_hub.url, token=client_hub.token)
    assert ("lfs", "deduplicated") in [(f.mode, f.status) for f in again.files]
    assert again.uploaded_bytes == 0


@pytest.mark.parametrize("which", ["main", "v1", "dev", "first-commit", "second-commit"])
def test_pull_by_branch_tag_and_commit(
    client_hub: ClientHub, history: dict[str, object], tmp_path: Path, which: str
) -> None:
    first, second, dev = history["first"], history["second"], history["dev"]
    rev, want = {
        "main": ("main", second),
        "v1": ("v1", first),
        "dev": ("dev", dev),
        "first-commit": (first.commit, first),  # type: ignore[attr-defined]
        "second-commit": (second.commit, second),  # type: ignore[attr-defined]
    }[which]
    got = pull(
        parse_repo_ref(f"{history['repo']}@{rev}"), endpoint=client_hub.url, token=None, cache_dir=tmp_path
    )
    assert got.commit == want.commit  # type: ignore[attr-defined]
    files = files_of(got.snapshot)
    assert ("extra.txt" in files) == (which == "dev")
    assert (b'"version": 2' in files["config.json"]) == (which not in ("v1", "first-commit"))
    ref_file = tmp_path / f"models--{str(history['repo']).replace('/', '--')}" / "refs" / rev
    assert ref_file.exists() == (len(rev) != 40)


def test_unknown_revision_is_typed(client_hub: ClientHub, history: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(RevisionNotFoundError):
        pull(
            parse_repo_ref(f"{history['repo']}@nope"), endpoint=client_hub.url, token=None, cache_dir=tmp_path
        )
    assert not (
        tmp_path / f"models--{str(history['repo']).replace('/', '--')}" / "snapshots"
    ).exists() or not any(
        (tmp_path / f"models--{str(history['repo']).replace('/', '--')}" / "snapshots").iterdir()
    )


def test_include_and_exclude_globs(client_hub: ClientHub, history: dict[str, object], tmp_path: Path) -> None:
    ref = parse_repo_ref(str(history["repo"]))
    only = pull(
        ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path / "a", include=["*.json", "sub/"]
    )
    assert sorted(f.path for f in only.files) == ["config.json", "sub/blob.bin", "sub/notes.txt"]
    assert sorted(files_of(only.snapshot)) == ["config.json", "sub/blob.bin", "sub/notes.txt"]
    rest = pull(
        ref, endpoint=client_hub.url, token=None, cache_dir=tmp_path / "b", exclude=["sub/*", "*.safetensors"]
    )
    assert sorted(f.path for f in rest.files) == [".gitattributes", "config.json", "empty.txt"]


def test_push_to_a_commit_id_is_refused(client_hub: ClientHub, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        push(tmp_path, parse_repo_ref("alice/x@" + "a" * 40), endpoint=client_hub.url, token=client_hub.token)


def test_pull_follows_a_moved_repository(client_hub: ClientHub, tmp_path: Path) -> None:
    src = make_model_dir(tmp_path / "src", seed=41)
    old, new = f"alice/old-{uuid.uuid4().hex[:8]}", f"alice/new-{uuid.uuid4().hex[:8]}"
    push(src, parse_repo_ref(old), endpoint=client_hub.url, token=client_hub.token, create=True)
    r = httpx.post(
        f"{client_hub.url}/api/repos/move",
        json={"fromRepo": old, "toRepo": new, "type": "model"},
        headers={"authorization": f"Bearer {client_hub.token}"},
    )
    assert r.status_code == 200, r.text
    got = pull(parse_repo_ref(old), endpoint=client_hub.url, token=None, cache_dir=tmp_path / "c")  # 307s
    assert {k: v for k, v in files_of(got.snapshot).items() if k != ".gitattributes"} == files_of(src)
