"""Evasions from the scanner review, checked at the depth where each was fixed: archive directories,
the pickle sniffer, joblib array sizes, tar and joblib ZF sniffing, .npy descriptors, legacy persistent ids."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from security_corpus import _tar_v7, _zip_decoy_directory, padded_member

from cairn.format.pickle_machine import _dtype_itemsize
from cairn.format.pickle_vm import Build, Call, Global, walk
from cairn.security import Severity, scan_bytes
from cairn.security.archives import read_zip
from cairn.security.detect import joblib_zfile_start, looks_like_pickle, sniff
from cairn.security.pickle_rules import judge_pickles

PAYLOAD = b"cos\nsystem\n(S'true'\ntR."


def _rules(data: bytes, name: str = "f") -> set[str]:
    return {f.rule for f in scan_bytes(data, name).findings}


def test_decoy_directory_is_ambiguous_and_both_member_sets_are_read(tmp_path: Path) -> None:
    data = _zip_decoy_directory(tmp_path)
    # zipfile sees only the decoy: the benign pickle
    assert zipfile.ZipFile(io.BytesIO(data)).read("archive/data.pkl").startswith(b"\x80\x02}")
    members, anomalies = read_zip(data)
    assert [a.kind for a in anomalies] == ["ambiguous-directory"]
    assert [m.name for m in members] == ["archive/data.pkl", "archive/version"] * 2
    assert len({m.data_offset for m in members}) == 4
    report = scan_bytes(data, "decoy.pt")
    assert {"zip-ambiguous-directory", "pickle-dangerous-global"} <= {f.rule for f in report.findings}
    assert report.max_severity is Severity.CRITICAL


def test_prepended_data_alone_is_not_ambiguous() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", b"hello")
    data = b"#!/bin/sh\nexit 0\n" + buf.getvalue()
    members, anomalies = read_zip(data)
    assert [m.name for m in members] == ["a.txt"]
    assert anomalies == []


@pytest.mark.parametrize(
    "prefix", [b"\x880", b"C\x01x0", b"\x8f0", b"\x890", b"K\x010", b"G" + bytes(8) + b"0"]
)
def test_a_pickle_may_start_with_any_opcode(prefix: bytes) -> None:
    assert sniff(prefix + PAYLOAD) == "pickle"
    assert "pickle-dangerous-global" in _rules(prefix + PAYLOAD)


def test_padding_past_the_sniff_limits_is_still_a_pickle() -> None:
    assert looks_like_pickle(b"N0" * 60_000 + PAYLOAD)  # past the opcode limit
    assert looks_like_pickle(b"N0" * 600_000 + PAYLOAD)  # past the byte limit
    assert "pickle-dangerous-global" in _rules(b"N0" * 600_000 + PAYLOAD)


def test_text_and_data_are_not_pickles() -> None:
    noise = np.random.default_rng(0).bytes(300_000)
    texts = (
        b"class X(Module):\n    pass\n",
        b"# a model\n",
        b"1 2 3\n",
        b"hello from cairn\n" * 10,
        b"hello.",
    )
    for data in (*texts, bytes(range(256)) * 8, noise):
        assert not looks_like_pickle(data)
        assert scan_bytes(data, "x").findings == ()


def test_payload_in_a_file_of_no_known_format_is_found() -> None:
    # an unknown first byte, then a complete protocol 2 pickle further in
    data = b"\xff\xfe junk " + b"\x80\x02" + PAYLOAD
    report = scan_bytes(data, "blob.bin")
    assert [f.rule for f in report.findings] == ["pickle-dangerous-global"]
    assert report.skipped == ()


def test_big_compressed_member_is_not_judged_by_its_head(tmp_path: Path) -> None:
    report = scan_bytes(padded_member(tmp_path), "padded.pt")
    assert "pickle-dangerous-global" in {f.rule for f in report.findings}


def _dtype(*args: object, state: object = None) -> object:
    call = Call(Global("numpy", "dtype", 0), args, 0, "REDUCE")
    return call if state is None else Build(call, state, 0)


@pytest.mark.parametrize(
    ("dtype", "size"),
    [
        (_dtype("f8", False, True), 8),
        (_dtype("float64"), 8),
        (_dtype("<U3"), 12),
        (_dtype(Global("builtins", "float", 0)), 8),
        (_dtype(Global("numpy", "int16", 0)), 2),
        (_dtype("O8", False, True), 0),
        (_dtype("object"), 0),
        (_dtype("V16", False, True, state=(3, "|", None, ("a",), {"a": (_dtype("O8"), 0)}, 16, 1, 0)), 0),
        (_dtype("V16", False, True, state=(3, "|", None, None, None, 16, 1, 63)), 0),
        (_dtype("V16", False, True, state=(3, "|", None, ("a",), {"a": (_dtype("f8"), 0)}, 8, 1, 0)), 16),
        (_dtype(Global("mymod", "Evil", 0)), None),
        (_dtype("not a dtype"), None),
        (Call(Global("mymod", "dtype", 0), ("f8",), 0, "REDUCE"), None),
        ("f8", None),
    ],
)
def test_joblib_item_size_is_resolved_by_numpy_from_literals(dtype: object, size: int | None) -> None:
    assert _dtype_itemsize(dtype) == size


def test_unresolved_joblib_dtype_is_a_high_finding() -> None:
    def su(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()

    wrapper = su("joblib.numpy_pickle") + su("NumpyArrayWrapper") + b"\x93)\x81"
    state = b"}(" + su("shape") + b"K\x02\x85" + su("dtype") + su("mymod") + su("dt") + b"\x93)R" + b"u"
    data = b"\x80\x04" + wrapper + state + b"b" + b"\x80\x04N." + b"."
    result = walk(data)
    assert result.unresolved_arrays
    found: list[tuple[Severity, str]] = []
    judge_pickles([result], lambda sev, rule, *_: found.append((sev, rule)))
    assert (Severity.HIGH, "pickle-joblib-unresolved-array") in found


def test_v7_tar_is_sniffed_by_checksum(tmp_path: Path) -> None:
    data = _tar_v7(tmp_path)
    assert b"ustar" not in data
    assert sniff(data) == "tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert sorted(tf.getnames()) == ["pickle", "storages", "tensors"]
    report = scan_bytes(data, "legacy.tar")
    hits = {f.member for f in report.findings if f.rule == "pickle-dangerous-global"}
    assert hits == {"storages", "tensors", "pickle"}
    broken = bytearray(data)
    broken[148:156] = b"0000000\x00"
    assert sniff(bytes(broken)) != "tar"


def test_old_joblib_zfile_is_decompressed_and_walked() -> None:
    import zlib

    body = b"\x80\x02" + PAYLOAD
    for width in (19, 20):  # joblib <= 0.8.4 wrote one more space
        data = b"ZF" + (b"0x%x" % len(body)).ljust(width) + zlib.compress(body)
        assert joblib_zfile_start(data) == 2 + width
        assert sniff(data) == "joblib-zfile"
        report = scan_bytes(data, "old.pkl")
        assert [f.member for f in report.findings if f.rule == "pickle-dangerous-global"] == ["<zfile>"]
    broken = b"ZF" + b"0x10".ljust(19) + b"not zlib at all"
    report = scan_bytes(broken, "old.pkl")
    assert report.errors and report.exit_status() == 2
    assert joblib_zfile_start(b"ZF is just text\n") is None


def _npy(descr: object, body: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": (1,)})
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


@pytest.mark.parametrize("descr", ["object", "O", "|O8", [("a", "<f8"), ("b", "|O")], "no such dtype"])
def test_npy_object_descr_by_any_spelling(descr: object) -> None:
    assert "pickle-dangerous-global" in _rules(_npy(descr, b"\x80\x02" + PAYLOAD))


@pytest.mark.parametrize("descr", ["<f4", "|u1", [("a", "<f8"), ("b", "<i4")], "<U5"])
def test_npy_plain_descr_stays_clean(descr: object) -> None:
    assert scan_bytes(_npy(descr, bytes(64)), "a.npy").findings == ()


def test_legacy_module_persistent_id_is_judged_as_its_class() -> None:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    head = magic + pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)

    def saved(module: str, name: str) -> bytes:
        pid = b"(X\x06\x00\x00\x00module" + b"c" + f"{module}\n{name}\n".encode() + b"NNt"
        return b"\x80\x02" + pid + b"Q)\x81}b." + pickle.dumps([], protocol=2)

    assert _rules(head + saved("torch.nn.modules.linear", "Linear"), "m.pt") == set()
    assert "pickle-dangerous-global" in _rules(head + saved("os", "system"), "m.pt")
    assert "pickle-unknown-call" in _rules(head + saved("mytraining.nets", "Net"), "m.pt")
    # outside the legacy format a persistent id stays an unknown callee
    plain = b"\x80\x02(X\x06\x00\x00\x00modulectorch.nn.modules.linear\nLinear\nNNtQ)\x81."
    assert "pickle-computed-call" in _rules(plain, "m.pkl")
