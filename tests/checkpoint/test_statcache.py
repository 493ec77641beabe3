"""The verified-file stat cache: a load skips re-hashing only files nobody has changed since cairn
wrote or hashed them; every other case re-hashes, and a damaged cache never gives a wrong answer."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest

import cairn
from cairn.errors import IntegrityError, UsageError
from cairn.format import statcache
from cairn.format.statcache import ENV_VAR, Stamp, VerifiedCache, default_cache, is_racy
from file_tricks import flip_last_byte_keep_mtime

MARGIN_S = 0.05  # longer than the racy-timestamp margin of a filesystem with sub-second timestamps


def _state() -> dict[str, np.ndarray]:
    return {"w": np.arange(4096, dtype=np.float32), "b": np.arange(7, dtype=np.int64)}


def _target() -> dict[str, np.ndarray]:
    return {"w": np.zeros(4096, np.float32), "b": np.zeros(7, np.int64)}


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "verified"
    monkeypatch.setenv(ENV_VAR, str(path))
    return path


@pytest.fixture
def saved(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkpoint whose save recorded every file (the save waits out the racy margin even for small
    files here; by default it does so only when a re-hash would cost more than the wait)."""
    monkeypatch.setattr(statcache, "WAIT_FOR_RACY_BYTES", 0)
    root = tmp_path / "ck"
    cairn.save(root, model=_state(), rng_state=False, capture_environment=False)
    return root


def test_a_save_records_its_files_and_the_next_load_trusts_them(saved: Path) -> None:
    target = _target()
    result = cairn.load(saved, model=target, rng_state=False)
    assert result.checked == {"model.safetensors": "cached"}
    assert (target["w"] == np.arange(4096)).all()


def test_full_and_false_ignore_the_cache(saved: Path) -> None:
    assert cairn.load(saved, model=_target(), verify="full").checked == {"model.safetensors": "hashed"}
    assert cairn.load(saved, model=_target(), verify=False).checked == {"model.safetensors": "unverified"}
    with pytest.raises(UsageError, match="verify"):
        cairn.load(saved, model=_target(), verify="yes")  # type: ignore[arg-type]


def test_a_change_that_restores_mtime_is_still_caught(saved: Path) -> None:
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "cached"}
    flip_last_byte_keep_mtime(saved / "model.safetensors")
    target = _target()
    with pytest.raises(IntegrityError, match="sha256"):
        cairn.load(saved, model=target)
    assert not target["w"].any()  # nothing applied
    with pytest.raises(IntegrityError):  # and the bad file was not recorded as good meanwhile
        cairn.load(saved, model=_target())


def test_a_copy_is_rehashed_then_recorded(saved: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)  # copy2 keeps mtimes; inode and ctime are new
    time.sleep(MARGIN_S)
    assert cairn.load(copy, model=_target()).checked == {"model.safetensors": "hashed"}
    assert cairn.load(copy, model=_target()).checked == {"model.safetensors": "cached"}
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "cached"}


def test_a_corrupt_cache_means_a_rehash_and_is_repaired(saved: Path, cache_dir: Path) -> None:
    records = list(cache_dir.glob("*.json"))
    assert len(records) == 1
    for garbage in [b"\x00\xff not json", b'{"version": 1, "directory": 7}', b"[]", b""]:
        records[0].write_bytes(garbage)
        result = cairn.load(saved, model=_target())
        assert result.checked == {"model.safetensors": "hashed"}
    time.sleep(MARGIN_S)
    cairn.load(saved, model=_target(), verify="full")
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "cached"}


def test_an_entry_for_another_hash_does_not_vouch(saved: Path, cache_dir: Path) -> None:
    record = next(cache_dir.glob("*.json"))
    record.write_text(record.read_text().replace('"model.safetensors":[', '"other":['))
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "hashed"}


def test_verify_hashes_everything_and_records_it(tmp_path: Path, cache_dir: Path) -> None:
    root = tmp_path / "ck"
    cairn.save(root, model=_state(), optimizer={"step": 3, "m": np.ones(5, np.float32)})
    time.sleep(MARGIN_S)
    cairn.verify(root)
    result = cairn.load(root, model=_target(), optimizer={"step": 0, "m": np.zeros(5, np.float32)})
    assert set(result.checked.values()) == {"cached"}
    assert "optimizer.json" in result.checked
    flip_last_byte_keep_mtime(root / "optimizer.safetensors")
    with pytest.raises(IntegrityError, match=r"optimizer\.safetensors"):
        cairn.verify(root)


def test_the_cache_can_be_switched_off(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "off")
    assert default_cache() is None
    monkeypatch.setattr(statcache, "WAIT_FOR_RACY_BYTES", 0)
    root = tmp_path / "ck"
    cairn.save(root, model=_state(), rng_state=False)
    time.sleep(MARGIN_S)
    cairn.verify(root)
    assert cairn.load(root, model=_target()).checked == {"model.safetensors": "hashed"}
    assert not cache_dir.exists()


def test_a_cache_directory_others_can_write_is_ignored(saved: Path, cache_dir: Path) -> None:
    os.chmod(cache_dir, 0o777)
    try:
        assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "hashed"}
    finally:
        os.chmod(cache_dir, 0o700)
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "cached"}


def test_default_location_follows_xdg(tmp_path: Path) -> None:
    cache = default_cache({"XDG_CACHE_HOME": str(tmp_path)})
    assert cache is not None and cache.root == tmp_path / "cairn" / "verified"
    cache = default_cache({ENV_VAR: str(tmp_path / "x"), "XDG_CACHE_HOME": "/elsewhere"})
    assert cache is not None and cache.root == tmp_path / "x"
    assert default_cache({ENV_VAR: "OFF"}) is None


def test_racy_stamps_are_not_recorded(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    stamp = Stamp.of(path.stat())
    newest = max(stamp.mtime_ns, stamp.ctime_ns)
    record = VerifiedCache(tmp_path / "cache").open(tmp_path)
    digest = "0" * 64
    # a stat taken in the same clock tick as the last change could miss a change that follows it
    assert is_racy(stamp, newest + 1_000)
    assert not record.add("f", stamp, digest, taken_ns=newest + 1_000)
    assert not record.vouches("f", stamp, digest)
    assert record.add("f", stamp, digest, taken_ns=newest + 1_000_000_000)
    assert record.vouches("f", stamp, digest)
    # whole-second timestamps (FAT, old filesystems) need a stat taken seconds later
    coarse = Stamp(stamp.dev, stamp.ino, 1, 5_000_000_000, 5_000_000_000)
    assert is_racy(coarse, 6_000_000_000)
    assert not is_racy(coarse, 8_000_000_000)
    # a racy re-record drops an older entry for the same file
    assert not record.add("f", stamp, digest, taken_ns=newest)
    assert not record.vouches("f", stamp, digest)


def test_cache_files_are_private(saved: Path, cache_dir: Path) -> None:
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    for record in cache_dir.iterdir():
        assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_a_full_hash_drops_an_entry_that_vouched_for_bad_bytes(saved: Path) -> None:
    """Bytes changed beneath the filesystem keep the stamp; only a full hash sees them, and from then on
    the entry no longer vouches. Simulated here by a cache entry that lies about the current stamp."""
    path = saved / "model.safetensors"
    flip_last_byte_keep_mtime(path)
    manifest_sha = json.loads((saved / "cairn.json").read_text())["files"]["model.safetensors"]["sha256"]
    cache = default_cache()
    assert cache is not None
    record = cache.open(saved)
    time.sleep(MARGIN_S)
    assert record.add("model.safetensors", Stamp.of(path.stat()), manifest_sha, taken_ns=time.time_ns())
    record.save()
    assert cairn.load(saved, model=_target()).checked == {"model.safetensors": "cached"}  # the documented gap
    with pytest.raises(IntegrityError):
        cairn.load(saved, model=_target(), verify="full")
    with pytest.raises(IntegrityError):
        cairn.load(saved, model=_target())  # the lying entry is gone


def test_records_follow_overwrites_and_deletions(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statcache, "WAIT_FOR_RACY_BYTES", 0)
    root = tmp_path / "run"
    manager = cairn.CheckpointManager(root, async_save=False, keep_policy=cairn.policies.LatestN(1))
    manager.save(1, model=_state())
    manager.save(2, model=_state())  # the keep policy deletes step 1: its record goes with it
    records = [json.loads(p.read_text())["directory"] for p in cache_dir.glob("*.json")]
    assert records == [os.path.realpath(manager.path(2))]
    manager.close()
    for record in cache_dir.glob("*.json"):
        record.unlink()
    ck = tmp_path / "ck"
    cairn.save(ck, model=_state(), optimizer={"m": np.ones(3, np.float32)}, rng_state=False)
    (record,) = cache_dir.glob("*.json")
    assert set(json.loads(record.read_text())["files"]) == {
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
    }
    cairn.save(ck, model=_state(), rng_state=False, overwrite=True)  # entries of the old files go
    assert set(json.loads(record.read_text())["files"]) == {"model.safetensors"}


def test_the_cache_prunes_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statcache, "_PRUNE_ABOVE", 8)
    cache = VerifiedCache(tmp_path / "cache")
    live = [tmp_path / f"live{i}" for i in range(12)]
    for d in live:
        d.mkdir()
    for i in range(4):  # records of directories deleted since
        cache.fresh(tmp_path / f"gone{i}").save()
    for d in live:
        cache.fresh(d).save()
    kept = {json.loads(p.read_text())["directory"] for p in cache.root.glob("*.json")}
    assert len(kept) <= 8
    assert not any("gone" in k for k in kept)
    assert os.path.realpath(live[-1]) in kept  # never the record just written
