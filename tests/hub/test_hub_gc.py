"""Garbage collection of unreferenced blobs (``cairn admin gc``), on both backends, with the real client
for what users do (delete repos, upload files) and the registry for what only a crash leaves behind."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from hub_testing import LiveHub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from sqlalchemy import update

from cairn.cli.main import main
from cairn.errors import UsageError
from cairn.meta import blobs
from cairn.registry import AddFile, MissingBlobError, Registry
from cairn.registry.gc import DEFAULT_GRACE_S

HOUR = 3600


def _age(reg: Registry, *shas: str, hours: float = 48) -> None:
    """Make blob rows look ``hours`` old: the tests cannot wait out a real grace period."""
    with reg.db.write() as conn:
        conn.execute(
            update(blobs)
            .where(blobs.c.sha256.in_(shas))
            .values(created_at=blobs.c.created_at - int(hours * HOUR * 1_000_000))
        )


def _sha(api: HfApi, repo: str, path: str) -> str:
    info = api.get_paths_info(repo, [path], expand=True)[0]
    assert info.lfs is not None
    return info.lfs.sha256


def test_deleted_repos_lose_their_blobs_history_and_shared_blobs_stay(hub: LiveHub, cache_dir: Path) -> None:
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    doomed, kept = b"only in the deleted repo" * 100, b"in both repos" * 100
    history = b"removed from main, still in history" * 100
    for repo in ("alice/gc-doomed", "alice/gc-kept"):
        api.create_repo(repo)
    api.create_commit(
        "alice/gc-doomed",
        [CommitOperationAdd("a.bin", doomed), CommitOperationAdd("b.bin", kept)],
        commit_message="add",
    )
    api.create_commit(
        "alice/gc-kept",
        [CommitOperationAdd("b.bin", kept), CommitOperationAdd("c.bin", history)],
        commit_message="add",
    )
    old = api.model_info("alice/gc-kept").sha
    api.create_commit("alice/gc-kept", [CommitOperationDelete("c.bin")], commit_message="rm")
    shas = {name: _sha(api, "alice/gc-doomed", name) for name in ("a.bin", "b.bin")}
    shas["c.bin"] = api.get_paths_info("alice/gc-kept", ["c.bin"], revision=old)[0].lfs.sha256
    api.delete_repo("alice/gc-doomed")
    _age(reg, *shas.values())

    dry = reg.collect_garbage(grace_s=DEFAULT_GRACE_S)
    assert dry.dry_run and shas["a.bin"] in dry.oids
    assert shas["b.bin"] not in dry.oids and shas["c.bin"] not in dry.oids
    assert reg.store.exists(shas["a.bin"])  # a dry run deletes nothing

    done = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
    assert shas["a.bin"] in done.oids and done.bytes >= len(doomed)
    assert not reg.store.exists(shas["a.bin"]) and reg.blob(shas["a.bin"]) is None
    assert reg.collect_garbage(grace_s=DEFAULT_GRACE_S).oids.count(shas["a.bin"]) == 0
    for name, revision in (("b.bin", "main"), ("c.bin", old)):
        path = hf_hub_download(
            "alice/gc-kept", name, revision=revision, cache_dir=cache_dir, endpoint=hub.url
        )
        assert Path(path).read_bytes() == (kept if name == "b.bin" else history)

    # the same bytes uploaded again after collection make a whole new blob
    api.create_repo("alice/gc-again")
    api.upload_file(path_or_fileobj=doomed, path_in_repo="a.bin", repo_id="alice/gc-again")
    assert (
        Path(hf_hub_download("alice/gc-again", "a.bin", cache_dir=cache_dir, endpoint=hub.url)).read_bytes()
        == doomed
    )


def test_uncommitted_uploads_go_after_the_grace_period_only(hub: LiveHub) -> None:
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    repo = reg.repos.create(who, "model", "alice", "gc-orphans", private=False)
    young = reg.ingest_bytes(b"uploaded a minute ago, commit still coming", repo_id=repo.id)
    stale = reg.ingest_bytes(b"uploaded two days ago, never committed", repo_id=repo.id)
    _age(reg, stale.sha256)
    report = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
    assert stale.sha256 in report.oids and young.sha256 not in report.oids
    assert reg.store.exists(young.sha256) and not reg.store.exists(stale.sha256)
    reg.commit(repo, "main", [AddFile("young.txt", young.sha256)], title="late commit", author="alice")
    with pytest.raises(MissingBlobError):  # the grant went with the blob: the client must upload again
        reg.commit(repo, "main", [AddFile("stale.txt", stale.sha256)], title="too late", author="alice")


def test_a_commit_in_flight_keeps_its_blob(hub: LiveHub, cache_dir: Path) -> None:
    """The commit holds the blob's row (FOR SHARE / the SQLite write lock) until it is done; the
    collector waits, re-checks, and keeps the blob: never a commit that names deleted bytes."""
    reg = hub.registry
    who = reg.users.authenticate(hub.token)
    repo = reg.repos.create(who, "model", "alice", "gc-race", private=False)
    blob = reg.ingest_bytes(b"an old upload whose commit arrives during gc" * 50, repo_id=repo.id)
    _age(reg, blob.sha256)
    inside, release = threading.Event(), threading.Event()

    def hold(*_: object) -> None:
        inside.set()
        assert release.wait(30)

    committer = threading.Thread(
        target=reg.commits.commit,
        args=(repo, "main", [AddFile("late.bin", blob.sha256)]),
        kwargs={"title": "slow", "author": "alice", "on_tree": hold},
    )
    committer.start()
    assert inside.wait(30)
    result: dict[str, object] = {}
    collector = threading.Thread(
        target=lambda: result.update(r=reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True))
    )
    collector.start()
    time.sleep(0.5)  # let the collector reach the row lock (if it is later, it simply finds the file row)
    release.set()
    committer.join(30)
    collector.join(60)
    assert not committer.is_alive() and not collector.is_alive()
    assert blob.sha256 not in result["r"].oids  # type: ignore[attr-defined]
    path = hf_hub_download("alice/gc-race", "late.bin", cache_dir=cache_dir, endpoint=hub.url)
    assert Path(path).read_bytes() == b"an old upload whose commit arrives during gc" * 50


def test_stray_objects_are_counted_and_deleted_only_when_asked(tmp_path: Path) -> None:
    reg = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    try:
        stray = "ab" * 32
        target = tmp_path / "blobs" / "ab" / "ab" / stray
        target.parent.mkdir(parents=True)
        target.write_bytes(b"written, then the process died before recording it")
        (target.parent / "not-an-oid.tmp").write_bytes(b"x")
        long_ago = time.time() - 3 * 24 * HOUR
        os.utime(target, (long_ago, long_ago))
        report = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
        assert report.stray_objects == 1 and target.exists()  # counted, not deleted
        report = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True, strays=True)
        assert report.stray_objects == 1 and not target.exists()
        assert (target.parent / "not-an-oid.tmp").exists()
    finally:
        reg.close()


def test_cli_gc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path / "d")]
    assert main(["admin", "create-user", "erin", "--json", *data]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    reg = Registry.open(f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs"))
    try:
        repo = reg.repos.create(reg.users.authenticate(token), "model", "erin", "m", private=False)
        orphan = reg.ingest_bytes(b"never committed", repo_id=repo.id)
        _age(reg, orphan.sha256)
    finally:
        reg.close()
    assert main(["admin", "gc", "--json", *data]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dryRun"] and out["oids"] == [orphan.sha256] and out["bytes"] == len(b"never committed")
    assert main(["admin", "gc", *data]) == 0
    assert "would delete 1 unreferenced blobs" in capsys.readouterr().out
    assert main(["admin", "gc", "--apply", "--grace-hours", "0.1", *data]) == 2  # below the 1 h floor
    assert main(["admin", "gc", "--strays", *data]) == 2  # deleting needs --apply
    assert main(["admin", "gc", "--apply", "--json", *data]) == 0
    assert json.loads(capsys.readouterr().out)["oids"] == [orphan.sha256]
    assert not (tmp_path / "d" / "blobs" / orphan.sha256[:2] / orphan.sha256[2:4] / orphan.sha256).exists()
    reg = Registry.open(f"sqlite:///{tmp_path / 'd' / 'hub.db'}", str(tmp_path / "d" / "blobs"))
    try:
        with pytest.raises(UsageError):
            reg.collect_garbage(grace_s=60)
    finally:
        reg.close()


def test_store_listing_names_every_blob_with_its_size_and_age(hub: LiveHub) -> None:
    reg = hub.registry
    blob = reg.ingest_bytes(b"listed by the store itself" * 7)
    listed = {oid: (size, mtime) for oid, size, mtime in reg.store.iter_objects()}
    size, mtime = listed[blob.sha256]
    assert size == len(b"listed by the store itself" * 7)
    assert abs(mtime - time.time()) < 3600
    assert all(len(oid) == 64 for oid in listed)


def test_a_collected_weights_file_takes_its_fingerprint_and_tensor_index_along(hub: LiveHub) -> None:
    import numpy as np
    from safetensors.numpy import save
    from sqlalchemy import func, select

    from cairn.meta.lineage_tables import blob_fingerprints, tensor_index

    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/gc-weights")
    weights = save({"w": np.arange(4096, dtype=np.float32).reshape(64, 64) + 0.5})
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id="alice/gc-weights")
    sha = _sha(api, "alice/gc-weights", "model.safetensors")

    def rows() -> tuple[int, int]:
        with reg.db.read() as conn:
            fps = conn.execute(select(func.count()).where(blob_fingerprints.c.sha256 == sha)).scalar_one()
            idx = conn.execute(select(func.count()).where(tensor_index.c.blob_sha256 == sha)).scalar_one()
        return fps, idx

    assert rows() == (1, 1)
    api.delete_repo("alice/gc-weights")
    _age(reg, sha)
    assert sha in reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True).oids
    assert rows() == (0, 0)


def test_abandoned_multipart_parts_and_temp_files_go_after_the_grace_period(tmp_path: Path) -> None:
    """A client that sends one part of a multipart upload and never completes it leaves the part in the
    local store's staging folder; gc removes it (and a crashed process's temporary file) once nothing has
    touched it for the grace period, and leaves a fresh one alone."""
    import hashlib

    import httpx
    from hub_testing import ServerThread

    from cairn.hub import HubConfig, create_app

    data_dir = tmp_path / "d"
    reg = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(data_dir))
    reg.users.create_user("erin")
    token = reg.users.create_token("erin")
    config = HubConfig(regular_upload_cap=0, multipart_chunk_bytes=64 * 1024)
    payload = os.urandom(200 * 1024)  # four parts
    oid = hashlib.sha256(payload).hexdigest()
    try:
        with ServerThread(create_app(reg, config)) as server:
            url = f"http://127.0.0.1:{server.port}"
            auth = {"authorization": f"Bearer {token}"}
            assert httpx.post(f"{url}/api/repos/create", json={"name": "mp"}, headers=auth).status_code == 200
            batch = httpx.post(
                f"{url}/erin/mp.git/info/lfs/objects/batch",
                json={
                    "operation": "upload",
                    "transfers": ["basic", "multipart"],
                    "objects": [{"oid": oid, "size": len(payload)}],
                },
                headers=auth,
            ).json()
            header = batch["objects"][0]["actions"]["upload"]["header"]
            assert httpx.put(header["1"], content=payload[: 64 * 1024]).status_code == 200  # then gone
        staging = reg.store.staging_dir()
        assert staging is not None
        parts = staging / f"mp-{oid}"
        assert parts.is_dir() and any(parts.iterdir())
        crashed = staging / "upload-crashed"
        crashed.write_bytes(b"x" * 1000)
        fresh = staging / "upload-in-progress"
        fresh.write_bytes(b"y" * 10)

        report = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
        assert report.staging_entries == 0 and parts.exists()  # all recent: kept

        long_ago = time.time() - 2 * DEFAULT_GRACE_S
        for path in (crashed, parts, *parts.iterdir()):
            os.utime(path, (long_ago, long_ago))
        dry = reg.collect_garbage(grace_s=DEFAULT_GRACE_S)
        assert (dry.staging_entries, dry.staging_bytes) == (2, 1000 + 64 * 1024) and parts.exists()
        done = reg.collect_garbage(grace_s=DEFAULT_GRACE_S, apply=True)
        assert done.staging_entries == 2
        assert not parts.exists() and not crashed.exists() and fresh.exists()
    finally:
        reg.close()
