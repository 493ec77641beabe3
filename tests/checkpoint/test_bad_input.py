"""Truncated, corrupted and tampered checkpoints: a typed error that names the file; nothing applied."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from ckpt_helpers import TinyNet, assert_same_tensors

import cairn
from cairn.errors import CairnError, FormatError, IntegrityError, LimitExceededError, NotFoundError
from cairn.format.manifest import read_manifest


@pytest.fixture
def ckpt(tmp_path: Path, trained: dict[str, Any]) -> Path:
    cairn.save(tmp_path / "ck", **trained)
    return tmp_path / "ck"


def _flip(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_manifest(ck: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    doc = json.loads((ck / "cairn.json").read_text())
    edit(doc)
    (ck / "cairn.json").write_text(json.dumps(doc))


CASES: dict[str, tuple[Callable[[Path], None], type[CairnError], str]] = {
    "flipped weight byte": (lambda ck: _flip(ck / "model.safetensors"), IntegrityError, "model.safetensors"),
    "flipped optimizer byte": (
        lambda ck: _flip(ck / "optimizer.safetensors", 200),
        IntegrityError,
        "optimizer.safetensors",
    ),
    "truncated weights": (
        lambda ck: (ck / "model.safetensors").write_bytes((ck / "model.safetensors").read_bytes()[:-10]),
        IntegrityError,
        "model.safetensors",
    ),
    "missing file": (lambda ck: (ck / "optimizer.json").unlink(), NotFoundError, "optimizer.json"),
    "no manifest": (lambda ck: (ck / "cairn.json").unlink(), NotFoundError, "cairn.json"),
    "manifest not json": (lambda ck: (ck / "cairn.json").write_text("{nope"), FormatError, "cairn.json"),
    "future format version": (
        lambda ck: _rewrite_manifest(ck, lambda d: d.update(format_version=99)),
        FormatError,
        "newer",
    ),
    "wrong format name": (
        lambda ck: _rewrite_manifest(ck, lambda d: d.update(format="x")),
        FormatError,
        "format",
    ),
    "path escapes directory": (
        lambda ck: _rewrite_manifest(
            ck, lambda d: d["files"].update({"../evil": {"size": 1, "sha256": "0" * 64}})
        ),
        FormatError,
        "../evil",
    ),
    "hash tampered in manifest": (
        lambda ck: _rewrite_manifest(ck, lambda d: d["files"]["model.safetensors"].update(sha256="a" * 64)),
        IntegrityError,
        "model.safetensors",
    ),
    "part refers to unlisted file": (
        lambda ck: _rewrite_manifest(ck, lambda d: d["files"].pop("model.safetensors")),
        FormatError,
        "model.safetensors",
    ),
    "negative size": (
        lambda ck: _rewrite_manifest(ck, lambda d: d["files"]["model.safetensors"].update(size=-1)),
        FormatError,
        "size",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damage_gives_typed_error_and_nothing_is_applied(ckpt: Path, case: str) -> None:
    damage, error, mentions = CASES[case]
    damage(ckpt)
    model = TinyNet()
    opt = torch.optim.AdamW(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(error) as exc:
        cairn.load(ckpt, model=model, optimizer=opt)
    assert mentions in str(exc.value)
    assert_same_tensors(before, model.state_dict())
    assert opt.state_dict()["state"] == {}
    with pytest.raises(error):
        cairn.verify(ckpt)


def test_verify_finds_a_stray_file(ckpt: Path) -> None:
    (ckpt / "payload.pkl").write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"payload\.pkl"):
        cairn.verify(ckpt)


def _set_header(path: Path, header: bytes, data: bytes = b"") -> None:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


@pytest.mark.parametrize(
    ("header", "data", "error"),
    [
        (b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}', b"\0" * 8, FormatError),
        (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', b"\0" * 8, FormatError),
        (b'{"w": {"dtype": "EVIL", "shape": [1], "data_offsets": [0, 4]}}', b"\0" * 4, FormatError),
        (b'{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', b"\0" * 4, FormatError),
        (b"[1, 2]", b"", FormatError),
        (b"\xff\xfe", b"", FormatError),
    ],
)
def test_hostile_safetensors_headers(ckpt: Path, header: bytes, data: bytes, error: type[CairnError]) -> None:
    """A header that lies, even with a manifest rewritten to match, is refused before allocation."""
    path = ckpt / "model.safetensors"
    _set_header(path, header, data)
    import hashlib

    _rewrite_manifest(
        ckpt,
        lambda d: d["files"]["model.safetensors"].update(
            size=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest()
        ),
    )
    with pytest.raises(error):
        cairn.load(ckpt, model=TinyNet())


def test_huge_declared_header_is_refused_without_allocating(ckpt: Path) -> None:
    from cairn.format.safetensors import read_header_path

    path = ckpt / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(LimitExceededError):
        read_header_path(path)


def test_manifest_round_trips_through_the_parser(ckpt: Path) -> None:
    manifest = read_manifest(ckpt)
    assert json.loads(manifest.dumps()) == json.loads((ckpt / "cairn.json").read_bytes())
