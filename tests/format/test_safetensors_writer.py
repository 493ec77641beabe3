"""The streaming safetensors writer: gathered writev batches, the hash of exactly the bytes written, and
hashing deferred to the caller's fsync."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from cairn.errors import FormatError
from cairn.format.safetensors import read_header_path, write_safetensors, write_safetensors_fd


def _tensors(n_small: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {f"small.{i}": rng.standard_normal(3 + i % 5).astype(np.float32) for i in range(n_small)}
    out["big"] = rng.standard_normal((5 << 20) // 4 * 7).astype(np.float32)  # cut across batches
    out["empty"] = np.zeros((0, 4), np.float32)
    return out


def _items(tensors: dict[str, np.ndarray]) -> list[tuple[str, str, tuple[int, ...], memoryview]]:
    return [(k, "F32", tuple(v.shape), v.reshape(-1).view(np.uint8).data) for k, v in tensors.items()]


@pytest.mark.parametrize("deferred", [False, True])
def test_fd_writer_round_trips_and_hashes_the_file(tmp_path: Path, deferred: bool) -> None:
    tensors = _tensors(1500)  # more small tensors than one writev takes
    path = tmp_path / "t.safetensors"
    seen: list[int] = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # deferred hashing reads the file
    try:
        result = write_safetensors_fd(
            fd,
            _items(tensors),
            {"format": "np"},
            progress=seen.append,
            hash_while=(lambda: seen.append(os.fstat(fd).st_size)) if deferred else None,
        )
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert result.size == len(data) and result.sha256 == hashlib.sha256(data).hexdigest()
    assert seen == sorted(seen) and seen[-1] == len(data)  # progress, then (deferred) the full file
    back = load_file(str(path))
    assert set(back) == set(tensors)
    for key, value in tensors.items():
        assert np.array_equal(back[key], value)
    assert read_header_path(path).metadata == {"format": "np"}


def test_deferred_hash_is_of_the_file_not_of_a_buffer_changed_meanwhile(tmp_path: Path) -> None:
    """A caller's buffer that changes after being written (a training thread updating weights during a
    synchronous save) cannot make the digest disagree with the file."""
    w = np.ones(1 << 20, np.float32)
    path = tmp_path / "t.safetensors"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        result = write_safetensors_fd(
            fd, [("w", "F32", (w.size,), w.view(np.uint8).data)], hash_while=lambda: w.fill(2.0)
        )
    finally:
        os.close(fd)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (load_file(str(path))["w"] == 1.0).all()


def test_file_writer_matches_fd_writer(tmp_path: Path) -> None:
    tensors = _tensors(20)
    with (tmp_path / "a").open("wb") as f:
        a = write_safetensors(f, _items(tensors))
    fd = os.open(tmp_path / "b", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        b = write_safetensors_fd(fd, _items(tensors))
    finally:
        os.close(fd)
    assert a.sha256 == b.sha256
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_a_buffer_of_the_wrong_length_is_refused_before_writing(tmp_path: Path) -> None:
    bad = [("x", "F32", (4,), np.zeros(3, np.float32).view(np.uint8).data)]
    fd = os.open(tmp_path / "c", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(FormatError, match="expected 16"):
            write_safetensors_fd(fd, bad)
    finally:
        os.close(fd)
    assert (tmp_path / "c").stat().st_size == 0


def test_an_error_in_hash_while_propagates(tmp_path: Path) -> None:
    w = np.ones(1 << 16, np.float32)
    fd = os.open(tmp_path / "t", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)

    def fail() -> None:
        raise OSError(5, "fsync failed")

    try:
        with pytest.raises(OSError, match="fsync failed"):
            write_safetensors_fd(fd, [("w", "F32", (w.size,), w.view(np.uint8).data)], hash_while=fail)
    finally:
        os.close(fd)
