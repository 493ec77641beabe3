"""One module tells formats from magic bytes: :func:`detect` (which reader) and :func:`sniff` (how a
loader takes the bytes) share its signatures and agree where their questions overlap."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import cairn.security.detect as security_detect
from cairn.format import detect as format_detect
from cairn.format.detect import detect, detect_bytes, magic_kind, safetensors_length, sniff


def _files(folder: Path) -> dict[str, Path]:
    """One small file of each format both views name, keyed by that name."""
    out = {}
    np.save(folder / "a.npy", np.arange(3))
    out["npy"] = folder / "a.npy"
    save_file({"w": np.ones(2, np.float32)}, folder / "a.safetensors")
    out["safetensors"] = folder / "a.safetensors"
    (folder / "a.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    out["gguf"] = folder / "a.gguf"
    (folder / "a.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 56)
    out["hdf5"] = folder / "a.h5"
    with zipfile.ZipFile(folder / "a.zip", "w") as zf:
        zf.writestr("notes.txt", "hi")
    out["zip"] = folder / "a.zip"
    with tarfile.open(folder / "a.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    out["tar"] = folder / "a.tar"
    (folder / "a.pkl").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))
    out["pickle"] = folder / "a.pkl"
    return out


def test_detect_and_sniff_agree_on_every_shared_format(tmp_path: Path) -> None:
    for kind, path in _files(tmp_path).items():
        assert detect(path) == kind, path.name
        assert sniff(path.read_bytes()) == kind, path.name


def test_security_detect_is_the_format_module() -> None:
    """The scanner's names still import from ``cairn.security.detect`` and are the same objects."""
    for name in security_detect.__all__:
        assert getattr(security_detect, name) is getattr(format_detect, name), name


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"GGUF\x03\x00\x00\x00", "gguf"),
        (b"PK\x05\x06" + b"\0" * 18, "zip"),
        (b"\x80\x04\x95", None),
        (b"", None),
    ],
)
def test_magic_kind(head: bytes, kind: str | None) -> None:
    assert magic_kind(head) == kind


def test_safetensors_length_and_the_two_views_of_a_lying_length() -> None:
    head = (1 << 40).to_bytes(8, "little") + b'{"w":{}}'
    assert safetensors_length(head) == 1 << 40
    assert safetensors_length(b"\x08\0\0\0\0\0\0\0[") is None and safetensors_length(b"{") is None
    # a length past the end is still safetensors to both: the reader and the scanner report the lie
    assert detect_bytes(head, len(head)) == "safetensors" and sniff(head) == "safetensors"
