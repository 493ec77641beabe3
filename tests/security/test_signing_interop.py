"""Interoperability with the OMS reference implementation (``model_signing``) and golden signatures.

The golden files in ``tests/security/golden/`` were written once (see its README) by cairn 0.1.0 and by
model_signing 1.1.1; every later version of cairn must keep verifying them, and keep refusing them when a
byte of the model changes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import model_signing  # a dev dependency: interop is tested, never skipped
import pytest

from cairn.security.signing import (
    UntrustedCertificateError,
    WrongKeyError,
    sign,
    verify,
    write_keypair,
)

GOLDEN = Path(__file__).parent / "golden"
KEY_SIGNATURES = ["cairn-0.1.0-files.sig", "cairn-0.1.0-shards.sig", "model_signing-1.1.1.sig"]
CERT_SIGNATURES = ["cairn-0.1.0-certificate.sig", "model_signing-1.1.1-certificate.sig"]
GOLDEN_FILES = ("README.md", "config.json", "empty.txt", "weights/model.safetensors")


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_keypair(tmp_path_factory.mktemp("keys") / "interop")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "my-model"
    (root / "nested").mkdir(parents=True)
    (root / "weights.safetensors").write_bytes(bytes(range(256)) * 40)
    (root / "nested" / "tokenizer.json").write_text('{"vocab": {}}')
    (root / "empty").write_bytes(b"")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    return root


def _ms_verify(model_dir: Path, signature: Path, public: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model_dir, signature)


@pytest.mark.parametrize("method", ["files", "shards"])
def test_cairn_signature_verifies_with_model_signing(
    model: Path, keypair: tuple[Path, Path], method: str
) -> None:
    sign(model, key=keypair[0], method=method, shard_size=1000)  # type: ignore[arg-type]
    _ms_verify(model, model / "model.sig", keypair[1])
    (model / "nested" / "tokenizer.json").write_text('{"vocab": {"a": 1}}')
    with pytest.raises(ValueError, match="Signature mismatch"):
        _ms_verify(model, model / "model.sig", keypair[1])


def test_model_signing_signature_verifies_with_cairn(model: Path, keypair: tuple[Path, Path]) -> None:
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=keypair[0])
    config.set_hashing_config(
        model_signing.hashing.Config().set_ignored_paths(paths=["model.sig"], ignore_git_paths=True)
    )
    config.sign(model, model / "model.sig")
    result = verify(model, key=keypair[1])
    assert result.ok
    assert result.model_name == "my-model"
    assert set(result.files) == {"weights.safetensors", "nested/tokenizer.json", "empty"}
    (model / "weights.safetensors").write_bytes(b"swapped")
    assert verify(model, key=keypair[1]).changed == ("weights.safetensors",)


def test_model_signing_shard_signature_verifies_with_cairn(model: Path, keypair: tuple[Path, Path]) -> None:
    # model_signing records shard_size as a protobuf double (1000.0); cairn accepts integral doubles
    hashing = model_signing.hashing.Config().use_shard_serialization(shard_size=1000)
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=keypair[0])
    config.set_hashing_config(hashing.set_ignored_paths(paths=["model.sig"]))
    config.sign(model, model / "model.sig")
    result = verify(model, key=keypair[1])
    assert result.ok and result.serialization.shard_size == 1000


@pytest.mark.parametrize("name", KEY_SIGNATURES)
def test_golden_key_signatures_verify(name: str) -> None:
    result = verify(GOLDEN / "model", key=GOLDEN / "signer.pub.pem", signature=GOLDEN / name)
    assert result.ok, result.to_dict()
    covered = GOLDEN_FILES if "shards" not in name else tuple(f for f in GOLDEN_FILES if f != "empty.txt")
    assert sorted(result.files) == sorted(covered)


@pytest.mark.parametrize("name", CERT_SIGNATURES)
def test_golden_certificate_signatures_verify(name: str) -> None:
    result = verify(GOLDEN / "model", trusted=[GOLDEN / "root.pem"], signature=GOLDEN / name)
    assert result.ok
    assert result.signer.kind == "certificate" and result.signer.subject == "CN=cairn golden signer"


@pytest.mark.parametrize(
    "name", ["cairn-0.1.0-files.sig", "cairn-0.1.0-shards.sig", "cairn-0.1.0-certificate.sig"]
)
def test_model_signing_verifies_cairn_goldens(name: str) -> None:
    config = model_signing.verifying.Config()
    if "certificate" in name:
        config.use_certificate_verifier(certificate_chain=[GOLDEN / "root.pem"])
    else:
        config.use_elliptic_key_verifier(public_key=GOLDEN / "signer.pub.pem")
    config.verify(GOLDEN / "model", GOLDEN / name)  # raises ValueError on any mismatch


@pytest.mark.parametrize("name", CERT_SIGNATURES)
def test_golden_certificate_signatures_need_the_right_root(name: str, tmp_path: Path) -> None:
    # a chain that ends at a root nobody trusts: use the golden intermediate-less signer key's own cert
    other = tmp_path / "other-root.pem"
    other.write_bytes(_self_signed_root_pem())
    with pytest.raises(UntrustedCertificateError):
        verify(GOLDEN / "model", trusted=[other], signature=GOLDEN / name)


@pytest.mark.parametrize("name", KEY_SIGNATURES)
def test_golden_signatures_catch_a_changed_copy(
    name: str, tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(GOLDEN / "model", copy)
    (copy / "config.json").write_text('{"architectures": ["Evil"], "hidden_size": 8}\n')
    result = verify(copy, key=GOLDEN / "signer.pub.pem", signature=GOLDEN / name)
    assert result.changed == ("config.json",)
    with pytest.raises(WrongKeyError):
        verify(copy, key=keypair[1], signature=GOLDEN / name)


def test_cairn_and_model_signing_agree_on_the_manifest(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """Same directory, same key: the root digests (over canonically ordered resources) are equal."""
    import base64
    import json

    model = tmp_path / "m"
    shutil.copytree(GOLDEN / "model", model)
    ours = sign(model, key=keypair[0], signature=tmp_path / "ours.sig")
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=keypair[0])
    config.sign(model, tmp_path / "theirs.sig")
    doc = json.loads((tmp_path / "theirs.sig").read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == ours.root_digest
    assert [r["name"] for r in statement["predicate"]["resources"]] == [
        r.name for r in ours.manifest.resources
    ]


def test_model_signing_command_line_both_ways(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    """The reference tool itself (``python -m model_signing``), not only its library."""
    model = tmp_path / "m"
    shutil.copytree(GOLDEN / "model", model)
    tool = [sys.executable, "-m", "model_signing"]
    sign(model, key=keypair[0])
    ok = subprocess.run(
        [
            *tool,
            "verify",
            "key",
            str(model),
            "--public_key",
            str(keypair[1]),
            "--signature",
            str(model / "model.sig"),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok.stdout + ok.stderr
    theirs = tmp_path / "theirs.sig"
    made = subprocess.run(
        [*tool, "sign", "key", str(model), "--private_key", str(keypair[0]), "--signature", str(theirs)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert verify(model, key=keypair[1], signature=theirs).ok


def _self_signed_root_pem() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cairn golden root")])  # same name, other key
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
