"""A blob stored by the hub has its safetensors header parsed once: the upload's streaming fingerprint,
the scan, the parameter counts and (without a streamed fingerprint) the fingerprint read from the file
share one :class:`~cairn.format.safetensors.HeaderMemo`, and what each of them stores is what it
computes on its own.

The parses are counted by a profile hook on the real ``parse_header`` function (whoever calls it, by
whatever name), while the registry runs its real ingest on this thread."""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save as st_save
from sqlalchemy import select

from cairn.errors import FormatError
from cairn.format import safetensors as st_format
from cairn.format.hashing import git_blob_sha1
from cairn.format.safetensors import HeaderMemo
from cairn.governance.fingerprint import StreamingFingerprint, fingerprint_file
from cairn.meta.lineage_tables import INDEXED_TENSOR_BYTES, blob_fingerprints, tensor_index
from cairn.registry import Registry
from cairn.registry.scanning import safetensors_parameters
from cairn.security import scan


@contextlib.contextmanager
def parses() -> Iterator[list[int]]:
    """Count the calls of ``cairn.format.safetensors.parse_header`` made on this thread."""
    code = st_format.parse_header.__code__
    count = [0]
    previous = sys.getprofile()

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is code:
            count[0] += 1

    sys.setprofile(hook)
    try:
        yield count
    finally:
        sys.setprofile(previous)


def _weights() -> bytes:
    rng = np.random.default_rng(3)
    return st_save(
        {
            "embed": rng.standard_normal((64, 32)).astype(np.float32),
            "bias": rng.standard_normal(8).astype(np.float16),
            "lm_head": rng.standard_normal((32, 64)).astype(np.float32),
        }
    )


def _hostile() -> bytes:
    """A header whose two tensors overlap: the loader refuses it, the scanner reports it."""
    header = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
        }
    ).encode()
    return struct.pack("<Q", len(header)) + header + bytes(24)


def _stream_and_ingest(reg: Registry, data: bytes) -> str:
    """What the hub's LFS upload does: hash and fingerprint the bytes as they stream into a staging
    file, then ingest that file with the streamed fingerprint and its header memo."""
    staged = reg.staging_dir() / "upload-test"
    streamed = StreamingFingerprint(len(data))
    with staged.open("wb") as out:
        for i in range(0, len(data), 1000):  # chunks that split the header
            streamed.update(data[i : i + 1000])
            out.write(data[i : i + 1000])
    sha = hashlib.sha256(data).hexdigest()
    reg.ingest_blob(
        staged,
        sha,
        git_blob_sha1(data),
        len(data),
        fingerprint=streamed.result(),
        headers=streamed.headers,
    )
    return sha


def _stored(reg: Registry, sha: str) -> tuple[dict[str, Any] | None, set[str]]:
    with reg.db.read() as conn:
        row = conn.execute(
            select(blob_fingerprints.c.fingerprint).where(blob_fingerprints.c.sha256 == sha)
        ).first()
        indexed = set(
            conn.execute(select(tensor_index.c.tensor_sha256).where(tensor_index.c.blob_sha256 == sha))
            .scalars()
            .all()
        )
    return (None if row is None else json.loads(row.fingerprint)), indexed


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed-upload", "ingest-bytes"])
def test_a_safetensors_upload_parses_its_header_once(reg: Registry, tmp_path: Path, streamed: bool) -> None:
    data = _weights()
    with parses() as count:
        sha = _stream_and_ingest(reg, data) if streamed else reg.ingest_bytes(data).sha256
    assert count[0] == 1

    # the same results as each computation on its own (which parses the header again every time)
    copy = tmp_path / "model.safetensors"
    copy.write_bytes(data)
    found = reg.trust.inspections([sha])[sha]
    alone = scan([copy])
    assert found.status == "clean" and not alone.findings and not alone.errors
    expected_params = safetensors_parameters(lambda a, b: data[a:b], len(data))
    assert found.parameters == expected_params == {"F32": 2 * 64 * 32, "F16": 8}
    fp, indexed = _stored(reg, sha)
    expected_fp = fingerprint_file(copy)
    assert fp == expected_fp.to_dict()
    assert indexed == {t.sha256 for t in expected_fp.tensors.values() if t.nbytes >= INDEXED_TENSOR_BYTES}
    assert len(indexed) == 2  # the F16 bias is too small to index


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed-upload", "ingest-bytes"])
def test_a_hostile_header_is_parsed_once_and_judged_as_before(
    reg: Registry, tmp_path: Path, streamed: bool
) -> None:
    """The memo remembers a failed parse too: the scan still reports the header, with the same words
    as a scan on its own, and nothing is fingerprinted or counted."""
    data = _hostile()
    with parses() as count:
        sha = _stream_and_ingest(reg, data) if streamed else reg.ingest_bytes(data).sha256
    assert count[0] == 1
    copy = tmp_path / "bad.safetensors"
    copy.write_bytes(data)
    alone = scan([copy]).to_dict()["findings"]
    found = reg.trust.inspections([sha])[sha]
    assert found.status == "findings" and found.severity == "medium"
    assert [(f["rule"], f["message"]) for f in found.findings] == [(f["rule"], f["message"]) for f in alone]
    assert found.findings[0]["rule"] == "safetensors-invalid-header"
    assert found.parameters is None
    assert _stored(reg, sha) == (None, set())


def test_the_memo_answers_only_for_the_same_header_and_data_size(tmp_path: Path) -> None:
    a, b = _weights(), st_save({"x": np.zeros(4, np.float32)})
    n = struct.unpack("<Q", a[:8])[0]
    memo = HeaderMemo()
    first = memo.parse(a[8 : 8 + n], data_size=len(a) - 8 - n)
    assert memo.parse(a[8 : 8 + n], data_size=len(a) - 8 - n) is first and memo.parses == 1
    with pytest.raises(FormatError, match="data buffer"):  # another buffer size: parsed, and refused
        memo.parse(a[8 : 8 + n], data_size=len(a) - 7 - n)
    m = struct.unpack("<Q", b[:8])[0]
    assert list(memo.parse(b[8 : 8 + m], data_size=len(b) - 8 - m).tensors) == ["x"]
    assert memo.parses == 3
    bad = _hostile()
    k = struct.unpack("<Q", bad[:8])[0]
    for path in ("one", "two"):  # a remembered failure names each caller's own path
        with pytest.raises(FormatError, match="overlaps") as err:
            memo.parse(bad[8 : 8 + k], data_size=len(bad) - 8 - k, path=path)
        assert err.value.path == path
    assert memo.parses == 4
