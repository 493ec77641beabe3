"""The loader-faithful zip reader and the bounded decompression."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from pathlib import Path

import pytest

from cairn.security.archives import decompress, member_bytes, read_zip, unsafe_member_name


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_members_and_contents_match_zipfile() -> None:
    data = _zip({"a/data.pkl": b"hello", "b.bin": b"x" * 1000}, zipfile.ZIP_DEFLATED)
    members, anomalies = read_zip(data)
    assert anomalies == []
    assert [m.name for m in members] == ["a/data.pkl", "b.bin"]
    view = memoryview(data)
    assert bytes(member_bytes(view, members[1])[0]) == b"x" * 1000


def test_prepended_bytes_are_tolerated_like_zipfile() -> None:
    data = b"junk" * 100 + _zip({"m.pkl": b"abc"})
    members, anomalies = read_zip(data)
    assert anomalies == []
    assert bytes(member_bytes(memoryview(data), members[0])[0]) == b"abc"


def test_zip64_archives() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf, zf.open("big.bin", "w", force_zip64=True) as fh:
        fh.write(b"payload")
    members, anomalies = read_zip(buf.getvalue())
    assert anomalies == [] and members[0].name == "big.bin"
    assert bytes(member_bytes(memoryview(buf.getvalue()), members[0])[0]) == b"payload"


def test_local_name_disagreement_is_an_anomaly_and_data_still_read() -> None:
    data = _zip({"archive/data.pkl": b"content"})
    idx = data.index(b"archive/data.pkl")
    data = data[:idx] + b"archive/data.txt" + data[idx + 16 :]
    members, anomalies = read_zip(data)
    assert [a.kind for a in anomalies] == ["name-mismatch"]
    assert bytes(member_bytes(memoryview(data), members[0])[0]) == b"content"


def test_bad_crc_is_reported_not_fatal() -> None:
    data = bytearray(_zip({"m.pkl": b"content"}))
    central = data.index(b"PK\x01\x02")
    data[central + 16 : central + 20] = b"\x01\x02\x03\x04"
    members, _ = read_zip(bytes(data))
    content, problem = member_bytes(memoryview(bytes(data)), members[0])
    assert bytes(content) == b"content" and problem == "crc-mismatch"


def test_truncated_and_garbage_archives() -> None:
    data = _zip({"m.pkl": b"content" * 100})
    assert read_zip(b"not a zip")[0] == []
    _, anomalies = read_zip(data[:40] + data[-200:])
    assert anomalies
    entries = read_zip(b"PK\x05\x06" + b"\xff" * 18)[1]
    assert entries and entries[0].kind == "bad-directory"


def test_decompression_is_bounded() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = comp.compress(b"\x00" * (4 << 20)) + comp.flush()
    out, problem = decompress(raw, "deflate", limit=1 << 20)
    assert problem == "bomb" and out is not None and len(out) == 1 << 20
    assert decompress(raw, "deflate", limit=8 << 20) == (b"\x00" * (4 << 20), "")
    assert decompress(b"garbage", "deflate")[0] is None
    assert "unsupported" in decompress(b"x", "ppmd")[1]
    noise = random.Random(0).randbytes(1 << 20)  # 1 MiB that does not compress: big, not a bomb
    packed = zlib.compress(noise)
    assert decompress(packed, "zlib", limit=1 << 19)[1] == "too-large"
    assert decompress(zlib.compress(b"\x00" * (4 << 20)), "zlib", limit=1 << 20)[1] == "bomb"


def test_unsafe_member_names() -> None:
    for name in ("../x", "a/../../x", "/etc/passwd", "C:\\x", "..\\x"):
        assert unsafe_member_name(name), name
    for name in ("a/b.pkl", "..a/b", "a..b"):
        assert not unsafe_member_name(name), name


def test_gzip_members_are_all_read() -> None:
    import gzip

    data = gzip.compress(b"first ") + gzip.compress(b"second")
    assert decompress(data, "gzip") == (b"first second", "")
    assert decompress(data, "gzip", limit=8) == (b"first se", "too-large")


def test_large_compressed_npz_members_are_judged_by_their_head(tmp_path: Path) -> None:
    import numpy as np

    from cairn.security import scan

    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / "plain.npz", big=rng.standard_normal(400_000))
    report = scan([tmp_path / "plain.npz"])
    assert report.findings == () and report.errors == ()
    assert f"{tmp_path / 'plain.npz'}#big.npy" in report.scanned
    # an object array is a pickle: it is read in full, however large
    np.savez_compressed(
        tmp_path / "objects.npz", obj=np.array([rng.standard_normal(400_000), "x"], dtype=object)
    )
    report = scan([tmp_path / "objects.npz"])
    assert {f.rule for f in report.findings} == {"npy-object-array"}


def _overlapping_zip(copies: int) -> bytes:
    """Several central entries pointing at one deflated kernel (a non-recursive zip bomb, in miniature)."""
    import struct

    kernel = b"\x00" * (1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = comp.compress(kernel) + comp.flush()
    crc = zlib.crc32(kernel)
    local = (
        struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), len(kernel), 1, 0) + b"k"
    )
    central = b""
    for i in range(copies):
        name = f"{i:04d}".encode()
        central += (
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0,
                crc,
                len(body),
                len(kernel),
                len(name),
                0,
                0,
                0,
                0,
                0,
                0,
            )
            + name
        )
    offset = len(local) + len(body)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, copies, copies, len(central), offset, 0)
    return local + body + central + eocd


def test_overlapping_members_are_an_anomaly() -> None:
    members, anomalies = read_zip(_overlapping_zip(3))
    assert len(members) == 3
    assert [a.kind for a in anomalies].count("overlap") == 2
    assert [a.kind for a in anomalies].count("name-mismatch") == 3


def test_total_decompression_budget_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn.security import archives, scan_bytes

    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 3 << 20)
    report = scan_bytes(_overlapping_zip(6), "bomb.zip")
    assert any(f.rule == "zip-overlap" for f in report.findings)
    assert any("budget" in e.message for e in report.errors)
    assert report.exit_status() == 2
