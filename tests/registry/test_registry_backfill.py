"""The fingerprint backfill's bookkeeping on SQLite, count by count (the CLI over both backends is in
tests/hub/test_fingerprint_backfill.py): which blobs are candidates, how each is classified, pages that
span many blobs, and a fingerprint is stored only while its blob's row exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as st_save
from sqlalchemy import delete, func, select

from cairn.governance.fingerprint import fingerprint_blob
from cairn.meta.lineage_tables import blob_fingerprints, tensor_index
from cairn.registry import AddFile, Registry
from cairn.registry import backfill as backfill_mod


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    r = Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"))
    r.users.create_user("alice")
    yield r
    r.close()


def _st(seed: int) -> bytes:
    return st_save({"w": np.random.default_rng(seed).standard_normal((32, 32)).astype(np.float32)})


def _fingerprints(reg: Registry) -> int:
    with reg.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(blob_fingerprints)).scalar_one())


def test_candidates_are_committed_weight_files_without_a_fingerprint(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backfill_mod, "PAGE", 2)  # several pages from a handful of blobs
    who = reg.users.authenticate(reg.users.create_token("alice"))
    repo = reg.repos.create(who, "model", "alice", "m", private=False)
    weights = [reg.ingest_bytes(_st(i), repo_id=repo.id).sha256 for i in range(4)]
    not_weights = reg.ingest_bytes(b"PK\x03\x04 a zip name, but no torch checkpoint", repo_id=repo.id)
    readme = reg.ingest_bytes(_st(9), repo_id=repo.id)  # weights, but not named as a weight file
    never_committed = reg.ingest_bytes(_st(10), repo_id=repo.id)
    ops = [AddFile(f"shard-{i}.safetensors", sha) for i, sha in enumerate(weights)]
    ops += [AddFile("extra.PT", not_weights.sha256), AddFile("notes.txt", readme.sha256)]
    reg.commit(repo, "main", ops, title="w", author="alice")
    with reg.db.write() as conn:  # everything "from before fingerprints"
        conn.execute(delete(blob_fingerprints))
        conn.execute(delete(tensor_index))
    reg.store.delete(weights[3])

    dry = reg.backfill_fingerprints()  # by the first bytes only: the zip looks like a torch checkpoint
    assert (dry.candidates, dry.fingerprinted, dry.not_fingerprintable, dry.unreadable) == (5, 4, 0, 1)
    assert dry.dry_run and _fingerprints(reg) == 0
    assert [e["sha256"] for e in dry.errors] == [weights[3]]

    done = reg.backfill_fingerprints(apply=True)
    assert (done.candidates, done.fingerprinted, done.not_fingerprintable, done.unreadable) == (5, 3, 1, 1)
    assert done.bytes == sum(len(_st(i)) for i in range(3))
    assert _fingerprints(reg) == 3  # neither notes.txt's nor the uncommitted blob's
    assert never_committed.sha256 not in {r[0] for r in _rows(reg)}

    again = reg.backfill_fingerprints(apply=True)
    assert (again.candidates, again.fingerprinted, again.not_fingerprintable, again.unreadable) == (
        2,
        0,
        1,
        1,
    )
    assert again.to_dict()["errors"] == [{"sha256": weights[3], "error": done.errors[0]["error"]}]


def _rows(reg: Registry) -> list[tuple[str]]:
    with reg.db.read() as conn:
        return [(r.sha256,) for r in conn.execute(select(blob_fingerprints.c.sha256))]


def test_a_fingerprint_is_stored_only_while_its_blob_row_exists(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(_st(1))
    fp = fingerprint_blob(path)
    assert fp is not None
    assert reg.lineage.save("ab" * 32, fp, only_if_stored=True) is False  # collected meanwhile
    assert _fingerprints(reg) == 0
    info = reg.ingest_bytes(_st(1))  # the upload stores its own fingerprint
    assert reg.lineage.save(info.sha256, fp, only_if_stored=True) is True and _fingerprints(reg) == 1
