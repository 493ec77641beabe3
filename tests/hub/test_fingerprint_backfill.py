"""``cairn admin fingerprints``: weight files stored before the hub fingerprinted uploads get the
fingerprint an upload computes, on both backends; a blob missing from the store is reported, not fatal;
a second run changes nothing. Blobs "from before" are made by deleting the rows an upload wrote."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from hub_testing import Backend, LiveHub
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.numpy import save as st_save
from sqlalchemy import delete, select

from cairn.cli.main import main
from cairn.governance.fingerprint import Fingerprint
from cairn.meta.lineage_tables import blob_fingerprints, tensor_index
from cairn.registry import Registry


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layer.{i}": rng.standard_normal((32, 32)).astype(np.float32) for i in range(3)}


def _torch_zip(seed: int) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in _weights(seed).items()}, buf)
    return buf.getvalue()


def _rows(reg: Registry, sha: str) -> tuple[Any, set[tuple[str, int]]]:
    with reg.db.read() as conn:
        row = conn.execute(select(blob_fingerprints).where(blob_fingerprints.c.sha256 == sha)).first()
        indexed = {
            (r.tensor_sha256, r.nbytes)
            for r in conn.execute(select(tensor_index).where(tensor_index.c.blob_sha256 == sha))
        }
    return row, indexed


def _forget(reg: Registry, *shas: str) -> None:
    """Make blobs look stored before fingerprints existed."""
    with reg.db.write() as conn:
        conn.execute(delete(blob_fingerprints).where(blob_fingerprints.c.sha256.in_(shas)))
        conn.execute(delete(tensor_index).where(tensor_index.c.blob_sha256.in_(shas)))


def _sha(api: HfApi, repo: str, path: str) -> str:
    info = api.get_paths_info(repo, [path], expand=True)[0]
    assert info.lfs is not None
    return info.lfs.sha256


def _run(backend: Backend, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(
        ["admin", "fingerprints", "--json", "--db", backend.db_url, "--blobs", backend.blobs_url, *extra]
    )
    assert code == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_backfill_restores_the_fingerprints_uploads_compute(
    hub: LiveHub, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, api = hub.registry, HfApi(endpoint=hub.url, token=hub.token)
    api.create_repo("alice/bf-model")
    api.create_commit(
        "alice/bf-model",
        [
            CommitOperationAdd("model.safetensors", st_save(_weights(1))),  # fingerprinted while streaming
            CommitOperationAdd("pytorch_model.bin", _torch_zip(2)),  # fingerprinted from the stored file
            CommitOperationAdd("training.bin", b"\x00not weights at all" * 100),  # nothing to fingerprint
        ],
        commit_message="weights",
    )
    api.create_repo("alice/bf-lost")
    api.upload_file(
        path_or_fileobj=st_save(_weights(3)), path_in_repo="model.safetensors", repo_id="alice/bf-lost"
    )
    st_sha = _sha(api, "alice/bf-model", "model.safetensors")
    pt_sha = _sha(api, "alice/bf-model", "pytorch_model.bin")
    lost = _sha(api, "alice/bf-lost", "model.safetensors")
    uploaded = {sha: _rows(reg, sha) for sha in (st_sha, pt_sha)}
    assert all(row is not None and indexed for row, indexed in uploaded.values())
    mine = Fingerprint.from_dict(json.loads(uploaded[st_sha][0].fingerprint))
    assert "alice/bf-model" in [c["repo"] for c in reg.lineage.search(reg, mine, None)]

    _run(backend, capsys, "--apply")  # whatever other tests left behind is dealt with first
    before = _run(backend, capsys)
    _forget(reg, st_sha, pt_sha, lost)
    reg.store.delete(lost)  # and one blob the store has lost since
    assert "alice/bf-model" not in [c["repo"] for c in reg.lineage.search(reg, mine, None)]

    dry = _run(backend, capsys)
    assert dry["dryRun"] is True
    assert dry["candidates"] == before["candidates"] + 3
    assert dry["fingerprinted"] == before["fingerprinted"] + 2  # both look like weights
    assert dry["unreadable"] == before["unreadable"] + 1
    assert lost in [e["sha256"] for e in dry["errors"]]
    assert _rows(reg, st_sha) == (None, set()) and _rows(reg, pt_sha) == (None, set())  # nothing written

    applied = _run(backend, capsys, "--apply")
    assert applied["dryRun"] is False and applied["fingerprinted"] == 2
    assert applied["unreadable"] == before["unreadable"] + 1
    assert lost in [e["sha256"] for e in applied["errors"]]
    for sha, (row, indexed) in uploaded.items():
        again, again_indexed = _rows(reg, sha)
        assert again is not None
        assert json.loads(again.fingerprint) == json.loads(row.fingerprint)  # what the upload stored
        assert (again.arch, again.tensors) == (row.arch, row.tensors)
        assert again_indexed == indexed
    assert _rows(reg, lost) == (None, set())
    assert "alice/bf-model" in [c["repo"] for c in reg.lineage.search(reg, mine, None)]

    stamped = {sha: _rows(reg, sha)[0].created_at for sha in uploaded}
    twice = _run(backend, capsys, "--apply")  # idempotent: only what cannot be done is left
    assert twice["fingerprinted"] == 0
    assert twice["candidates"] == before["candidates"] + 1
    assert {sha: _rows(reg, sha)[0].created_at for sha in uploaded} == stamped


def test_cli_fingerprints_human_output(
    hub: LiveHub, backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["admin", "fingerprints", "--db", backend.db_url, "--blobs", backend.blobs_url])
    out = capsys.readouterr().out
    assert code == 0 and "have no fingerprint" in out and "would fingerprint" in out
