"""The garbage collector's grace period restarts whenever an upload brings stored bytes back (a new
upload of the same content, an LFS batch or verify that finds them), on both backends: an old
unreferenced row would otherwise be collected between the upload and the commit that names it."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx
import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from sqlalchemy import update

from cairn.meta import blobs
from cairn.registry import MissingBlobError, Registry
from cairn.registry.gc import DEFAULT_GRACE_S

_DAY_US = 48 * 3600 * 1_000_000


def _age(reg: Registry, sha: str) -> None:
    with reg.db.write() as conn:
        conn.execute(
            update(blobs).where(blobs.c.sha256 == sha).values(created_at=blobs.c.created_at - _DAY_US)
        )


def _collected(reg: Registry) -> list[str]:
    return reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True).oids


def test_a_new_upload_of_orphaned_bytes_restarts_their_grace(hub: LiveHub) -> None:
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    data = f"orphaned, then uploaded again {uuid.uuid4()}".encode() * 20
    gone = reg.repos.create(who, "model", "alice", f"gc-gone-{uuid.uuid4().hex[:8]}", private=False)
    first = reg.ingest_bytes(data, repo_id=gone.id)  # never committed: an orphan
    _age(reg, first.sha256)
    fresh = reg.repos.create(who, "model", "alice", f"gc-fresh-{uuid.uuid4().hex[:8]}", private=False)
    reg.ingest_bytes(data, repo_id=fresh.id)
    assert first.sha256 not in _collected(reg)
    assert reg.store.exists(first.sha256)


def test_an_lfs_batch_that_finds_stored_bytes_restarts_their_grace(hub: LiveHub, tmp_path: Path) -> None:
    """A client whose upload was never committed retries a day later: the batch answers "already
    stored" (no upload action), so the bytes must survive until the commit that follows."""
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    name = f"alice/gc-retry-{uuid.uuid4().hex[:8]}"
    api.create_repo(name)
    repo = reg.repos.get("model", "alice", name.split("/")[1], reg.users.authenticate(hub.token))
    data = f"weights uploaded, never committed {uuid.uuid4()}".encode() * 50
    oid = hashlib.sha256(data).hexdigest()
    reg.ingest_bytes(data, repo_id=repo.id)
    auth = {"authorization": f"Bearer {hub.token}"}
    for step in ("batch", "verify"):
        _age(reg, oid)
        if step == "batch":
            r = httpx.post(
                f"{hub.url}/{name}.git/info/lfs/objects/batch",
                headers=auth,
                json={
                    "operation": "upload",
                    "transfers": ["basic"],
                    "ref": {"name": "main"},
                    "objects": [{"oid": oid, "size": len(data)}],
                },
            )
            assert r.status_code == 200 and "actions" not in r.json()["objects"][0]
        else:
            r = httpx.post(
                f"{hub.url}/api/lfs-verify/models/{name}", headers=auth, json={"oid": oid, "size": len(data)}
            )
            assert r.status_code == 200
        assert oid not in _collected(reg)
    api.create_commit(name, [CommitOperationAdd("w.bin", data)], commit_message="add")
    path = hf_hub_download(name, "w.bin", cache_dir=tmp_path, endpoint=hub.url)
    assert Path(path).read_bytes() == data


def test_an_initial_commit_without_its_blob_is_a_typed_error(tmp_path: Path) -> None:
    reg = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    try:
        reg.users.create_user("alice")
        alice = reg.users.authenticate(reg.users.create_token("alice"))
        repo = reg.repos.create(alice, "model", "alice", "r", private=False)
        with pytest.raises(MissingBlobError):
            reg.commits.initial_commit(repo, "alice", "0" * 64)
    finally:
        reg.close()
