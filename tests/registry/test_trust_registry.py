"""The registry's trust machinery without HTTP: verdicts under the policy, inspections of hostile files,
scanning content that entered before scanning was on, signature records, and discovery filter parsing."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as st_save

from cairn.errors import UsageError
from cairn.registry import AddFile, Principal, Registry, User
from cairn.registry.discovery import parse_count, parse_filters
from cairn.registry.models import TokenInfo
from cairn.registry.scanning import Inspection, inspect_file, safetensors_parameters
from cairn.registry.signatures import load_keys, verify_tree
from cairn.registry.trust import QuarantinedFileError, TrustPolicy, UnsafeUploadError


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


EVIL = pickle.dumps([_Evil()])


def _ins(status: str, severity: str | None = None) -> Inspection:
    return Inspection("0" * 64, status, severity, {"findings": [], "errors": [], "skipped": []})


def test_verdicts_never_call_unscanned_or_unscannable_safe() -> None:
    policy = TrustPolicy()
    assert policy.verdict(None) == "unscanned"
    assert policy.verdict(_ins("error")) == "error"
    assert policy.verdict(_ins("skipped")) == "safe"
    assert policy.verdict(_ins("clean")) == "safe"
    assert policy.verdict(_ins("findings", "critical")) == "unsafe"
    assert policy.verdict(_ins("findings", "medium")) == "caution"
    assert TrustPolicy(block_severity="medium").verdict(_ins("findings", "medium")) == "unsafe"
    with pytest.raises(UsageError):
        TrustPolicy(on_unsafe="ignore")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        TrustPolicy(block_severity="dire")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"PK\x03\x04" + b"\0" * 40, "error"),  # truncated zip: could not be scanned
        (b"\x1f\x8b\x08\x00" + b"\xff" * 50, "error"),  # broken gzip stream
        (EVIL, "findings"),
        (b"hello, world\n", "skipped"),
    ],
)
def test_inspecting_hostile_files(tmp_path: Path, data: bytes, status: str) -> None:
    path = tmp_path / "upload-x"
    path.write_bytes(data)
    found = inspect_file(path, "a" * 64)
    assert found.status == status
    assert all(f["path"] == "a" * 64 for f in found.report["findings"])  # no staging names leak
    assert found.parameters is None


def test_safetensors_parameters_check_limits_before_reading() -> None:
    good = st_save({"a": np.zeros((2, 3), np.float32), "b": np.zeros(4, np.int8)})
    assert safetensors_parameters(lambda s, e: good[s:e], len(good)) == {"F32": 6, "I8": 4}
    huge = struct.pack("<Q", 1 << 60) + b"{}"
    reads: list[tuple[int, int]] = []

    def read(s: int, e: int) -> bytes:
        reads.append((s, e))
        return huge[s:e]

    assert safetensors_parameters(read, len(huge)) is None
    assert reads == [(0, 8)]  # the absurd header length was refused before reading it
    lying = struct.pack("<Q", 20) + b'{"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4]}}'
    assert safetensors_parameters(lambda s, e: lying[s:e], len(lying)) is None


def _registry(tmp_path: Path, policy: TrustPolicy) -> Registry:
    return Registry.open(f"sqlite:///{tmp_path / 'hub.db'}", str(tmp_path / "blobs"), trust=policy)


def _who(reg: Registry) -> Principal:
    user = reg.users.create_user("carol")
    return Principal(User(user.id, user.name, "", 0), TokenInfo("t", "write", 0))


def test_content_stored_before_scanning_is_scanned_at_commit(tmp_path: Path) -> None:
    off = _registry(tmp_path, TrustPolicy(scan=False))
    who = _who(off)
    repo = off.repos.create(who, "model", "carol", "m", private=False)
    blob = off.ingest_bytes(EVIL, repo_id=repo.id)
    off.commit(repo, "main", [AddFile("old.pkl", blob.sha256)], title="before scanning", author="carol")
    head = off.commits.branch_head(repo, "main")
    status = off.trust.file_status(off.commits.files(head))
    assert status["old.pkl"][0] == "unscanned"
    off.close()
    on = _registry(tmp_path, TrustPolicy())
    with pytest.raises(UnsafeUploadError) as err:
        on.commit(repo, "main", [AddFile("again.pkl", blob.sha256)], title="copy", author="carol")
    assert set(err.value.files) == {"again.pkl"}
    assert err.value.files["again.pkl"][0]["construct"] == "posix.system"
    assert on.commits.branch_head(repo, "main") == head  # nothing was committed
    assert on.trust.file_status(on.commits.files(head))["old.pkl"][0] == "unsafe"  # now inspected
    on.close()


def test_signature_records_for_hostile_signatures(tmp_path: Path) -> None:
    from cairn.security.signing import write_keypair

    _, public = write_keypair(tmp_path / "k")
    pem = public.read_text()
    assert verify_tree(False, None, [pem], {})["status"] == "none"
    assert verify_tree(True, None, [pem], {})["status"] == "invalid"  # too large to be a signature
    assert verify_tree(True, b"{}", [], {})["status"] == "unverified"
    for junk in (b"", b"\xff" * 100, b'{"mediaType": "x"}', b"[]"):
        record = verify_tree(True, junk, [pem], {"model.sig": "0" * 64})
        assert record["status"] == "invalid" and record["reason"]


def test_trusted_keys_are_validated(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(UsageError, match="elliptic"):
        load_keys([rsa_pem])
    with pytest.raises(UsageError, match="PEM"):
        load_keys(["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"])
    with pytest.raises(UsageError, match="at most"):
        load_keys(["x"] * 65)


def test_discovery_filter_parsing() -> None:
    assert parse_count("6B") == 6_000_000_000
    assert parse_count("1.5m") == 1_500_000
    assert parse_count("300") == 300
    for bad in ("", "B", "-1", "1e9", "12Q", "1" * 5000 + "x"):
        with pytest.raises(UsageError):
            parse_count(bad)
    assert len(parse_filters({"num_parameters": ["min:1M,max:2B"], "library": ["x"]})) == 2
    with pytest.raises(UsageError):
        parse_filters({"num_parameters": ["size:1"]})
    with pytest.raises(UsageError):
        parse_filters({"scan_status": ["clean"]})


def test_blocking_license_policy_refuses_the_commit(tmp_path: Path) -> None:
    from cairn.governance.policy import LicensePolicy, PolicyViolationError

    policy = TrustPolicy(
        license_policy=LicensePolicy(enforcement="block", allowed_licenses=frozenset({"mit"}))
    )
    reg = _registry(tmp_path, policy)
    try:
        who = _who(reg)
        repo = reg.repos.create(who, "model", "carol", "lic", private=False)
        head = reg.commits.branch_head(repo, "main")
        card = reg.ingest_bytes(b"---\nlicense: cc-by-nc-4.0\n---\n# x\n", repo_id=repo.id)
        with pytest.raises(PolicyViolationError, match="not in the allowed list"):
            reg.commit(repo, "main", [AddFile("README.md", card.sha256)], title="nc", author="carol")
        assert reg.commits.branch_head(repo, "main") == head
        ok = reg.ingest_bytes(b"---\nlicense: mit\n---\n# x\n", repo_id=repo.id)
        done = reg.commit(repo, "main", [AddFile("README.md", ok.sha256)], title="mit", author="carol")
        record = reg.trust.revision(done.id)
        assert record is not None and record["licenseCheck"]["decision"]["action"] == "allow"
    finally:
        reg.close()


def test_unscannable_files_are_accepted_as_error_or_blocked_on_request(tmp_path: Path) -> None:
    broken = b"PK\x03\x04" + b"\0" * 40  # a truncated zip: the scanner cannot analyse it
    reg = _registry(tmp_path, TrustPolicy())
    try:
        who = _who(reg)
        repo = reg.repos.create(who, "model", "carol", "u", private=False)
        blob = reg.ingest_bytes(broken, repo_id=repo.id)
        done = reg.commit(repo, "main", [AddFile("w.bin", blob.sha256)], title="accepted", author="carol")
        assert reg.trust.file_status(reg.commits.files(done.id))["w.bin"][0] == "error"  # never "safe"
    finally:
        reg.close()
    strict = _registry(tmp_path, TrustPolicy(block_unscannable=True))
    try:
        with pytest.raises(UnsafeUploadError, match="could-not-scan") as err:
            strict.commit(repo, "main", [AddFile("again.bin", blob.sha256)], title="refused", author="carol")
        assert "zip archive could not be read" in str(err.value)
    finally:
        strict.close()
    quarantine = _registry(tmp_path, TrustPolicy(on_unsafe="quarantine", block_unscannable=True))
    try:
        with pytest.raises(QuarantinedFileError):
            quarantine.lookup_file("model", "carol", "u", "main", "w.bin", None)
    finally:
        quarantine.close()
