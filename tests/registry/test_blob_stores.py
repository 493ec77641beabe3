"""The blob stores on their own: content addressing, atomic appearance, ranges, stale staging cleanup."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cairn.errors import UsageError
from cairn.store import BlobNotFoundError, BlobStore, LocalBlobStore, open_blob_store


def _put(store: LocalBlobStore, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    tmp = store.staging_dir() / "incoming"
    tmp.write_bytes(data)
    store.put_file(oid, tmp)
    assert not tmp.exists()
    return oid


def test_local_store_round_trip_and_ranges(tmp_path: Path) -> None:
    store = open_blob_store(str(tmp_path / "b"))
    assert isinstance(store, LocalBlobStore) and isinstance(store, BlobStore)
    oid = _put(store, b"0123456789")
    assert store.exists(oid) and store.size(oid) == 10
    assert b"".join(store.iter_range(oid)) == b"0123456789"
    assert b"".join(store.iter_range(oid, 3, 6)) == b"345"
    assert store.local_path(oid) == tmp_path / "b" / oid[:2] / oid[2:4] / oid
    assert _put(store, b"0123456789") == oid  # idempotent
    store.delete(oid)
    with pytest.raises(BlobNotFoundError):
        store.size(oid)
    with pytest.raises(BlobNotFoundError):
        store.iter_range(oid)
    for bad in ("../../etc/passwd", "A" * 64, "0" * 63):
        with pytest.raises(UsageError):
            store.exists(bad)


def test_bad_urls_and_stale_staging(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        open_blob_store("ftp://x/y")
    with pytest.raises(UsageError):
        open_blob_store("s3:///no-bucket")
    store = LocalBlobStore(tmp_path / "b")
    old, fresh = store.staging_dir() / "old-upload", store.staging_dir() / "fresh-upload"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    (store.staging_dir() / "mp-old").mkdir()
    past = time.time() - 2 * LocalBlobStore.STALE_AFTER_S
    os.utime(old, (past, past))
    os.utime(store.staging_dir() / "mp-old", (past, past))
    LocalBlobStore(tmp_path / "b")  # reopening cleans up what a crash left behind
    assert not old.exists() and not (store.staging_dir() / "mp-old").exists() and fresh.exists()
