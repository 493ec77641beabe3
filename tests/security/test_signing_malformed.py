"""Hostile and malformed signature files and keys: each gives a clear typed error, never a crash or a pass."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cairn.errors import FormatError, NotFoundError
from cairn.security.signing import (
    KeyFormatError,
    SignatureFormatError,
    UnsupportedSignatureError,
    authenticate,
    sign,
    verify,
    write_keypair,
)
from cairn.security.signing import api as api_module
from cairn.security.signing.envelope import Bundle, pae, parse_bundle
from cairn.security.signing.keys import load_private_key, load_public_key, sign_bytes


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_keypair(tmp_path_factory.mktemp("keys") / "k")


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path]) -> tuple[Path, bytes]:
    model = tmp_path_factory.mktemp("m") / "model"
    (model / "d").mkdir(parents=True)
    (model / "a.bin").write_bytes(b"alpha" * 100)
    (model / "d" / "b.bin").write_bytes(b"beta")
    sign(model, key=keys[0])
    return model, (model / "model.sig").read_bytes()


def _doc(sig: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(sig)
    return parsed


def _statement(sig: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(base64.b64decode(_doc(sig)["dsseEnvelope"]["payload"]))
    return parsed


def _resign(statement: dict[str, Any], private: Path) -> bytes:
    """A correctly signed bundle around an arbitrary (hostile) statement."""
    key = load_private_key(private)
    payload = json.dumps(statement).encode()
    from cairn.security.signing.keys import fingerprint

    bundle = Bundle(
        payload, sign_bytes(key, pae(Bundle.payload_type, payload)), key_hint=fingerprint(key.public_key())
    )
    return bundle.to_json()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"{",
        b"\xff\xfe\x00",
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["empty", "blank", "text", "list", "string", "open-brace", "binary", "deep-nesting"],
)
def test_not_a_bundle(data: bytes) -> None:
    with pytest.raises(SignatureFormatError):
        parse_bundle(data)


def test_every_truncation_is_a_format_error(signed: tuple[Path, bytes]) -> None:
    _, sig = signed
    for cut in range(0, len(sig), max(1, len(sig) // 97)):
        with pytest.raises(SignatureFormatError):
            parse_bundle(sig[:cut])


BUNDLE_EDITS = {
    "media-type": lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle.v0.2+json"),
    "no-envelope": lambda d: d.pop("dsseEnvelope"),
    "envelope-list": lambda d: d.update(dsseEnvelope=[]),
    "payload-type": lambda d: d["dsseEnvelope"].update(payloadType="text/plain"),
    "payload-not-b64": lambda d: d["dsseEnvelope"].update(payload="***"),
    "payload-number": lambda d: d["dsseEnvelope"].update(payload=12),
    "no-signatures": lambda d: d["dsseEnvelope"].update(signatures=[]),
    "two-signatures": lambda d: d["dsseEnvelope"]["signatures"].append(d["dsseEnvelope"]["signatures"][0]),
    "sig-not-b64": lambda d: d["dsseEnvelope"]["signatures"][0].update(sig="%%%"),
    "sig-missing": lambda d: d["dsseEnvelope"]["signatures"][0].pop("sig"),
    "no-material": lambda d: d.pop("verificationMaterial"),
    "keyless-material": lambda d: d.update(verificationMaterial={"certificate": {"rawBytes": "AAAA"}}),
    "hint-number": lambda d: d["verificationMaterial"]["publicKey"].update(hint=5),
    "empty-chain": lambda d: d.update(verificationMaterial={"x509CertificateChain": {"certificates": []}}),
    "chain-not-b64": lambda d: d.update(
        verificationMaterial={"x509CertificateChain": {"certificates": [{"rawBytes": "!"}]}}
    ),
}


@pytest.mark.parametrize("edit", list(BUNDLE_EDITS), ids=list(BUNDLE_EDITS))
def test_malformed_bundle_fields(edit: str, signed: tuple[Path, bytes], keys: tuple[Path, Path]) -> None:
    model, sig = signed
    doc = copy.deepcopy(_doc(sig))
    BUNDLE_EDITS[edit](doc)
    bad = model.parent / f"{edit}.sig"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SignatureFormatError):
        verify(model, key=keys[1], signature=bad)


def test_sigstore_keyless_bundle_is_a_clear_unsupported_error(
    signed: tuple[Path, bytes], keys: tuple[Path, Path]
) -> None:
    doc = _doc(signed[1])
    doc["verificationMaterial"] = {"certificate": {"rawBytes": "MIIB"}, "tlogEntries": [{"logIndex": "1"}]}
    with pytest.raises(UnsupportedSignatureError, match="keyless"):
        authenticate(json.dumps(doc).encode(), key=keys[1])


def test_chain_of_garbage_der_is_a_format_error(signed: tuple[Path, bytes], tmp_path: Path) -> None:
    doc = _doc(signed[1])
    doc["verificationMaterial"] = {"x509CertificateChain": {"certificates": [{"rawBytes": "AAAA"}]}}
    root = tmp_path / "root.pem"
    root.write_bytes(_any_cert_pem())
    with pytest.raises(SignatureFormatError):
        authenticate(json.dumps(doc).encode(), trusted=[root])


STATEMENT_EDITS = {
    "type": lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
    "predicate-type": lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"),
    "no-subject": lambda s: s.update(subject=[]),
    "two-subjects": lambda s: s["subject"].append(s["subject"][0]),
    "subject-digest": lambda s: s["subject"][0]["digest"].update(sha256="0" * 64),
    "no-predicate": lambda s: s.pop("predicate"),
    "method": lambda s: s["predicate"]["serialization"].update(method="tarball"),
    "hash-type": lambda s: s["predicate"]["serialization"].update(hash_type="md5"),
    "symlinks-str": lambda s: s["predicate"]["serialization"].update(allow_symlinks="yes"),
    "ignore-str": lambda s: s["predicate"]["serialization"].update(ignore_paths=".git"),
    "resources-dict": lambda s: s["predicate"].update(resources={}),
    "resource-str": lambda s: s["predicate"]["resources"].append("a.bin"),
    "parent-escape": lambda s: s["predicate"]["resources"][0].update(name="../../etc/passwd"),
    "absolute": lambda s: s["predicate"]["resources"][0].update(name="/etc/passwd"),
    "empty-component": lambda s: s["predicate"]["resources"][0].update(name="d//b.bin"),
    "dot-component": lambda s: s["predicate"]["resources"][0].update(name="./a.bin"),
    "backslash": lambda s: s["predicate"]["resources"][0].update(name="..\\..\\x"),
    "nul": lambda s: s["predicate"]["resources"][0].update(name="a\0.bin"),
    "digest-short": lambda s: s["predicate"]["resources"][0].update(digest="abc"),
    "digest-upper": lambda s: s["predicate"]["resources"][0].update(digest="A" * 64),
    "algorithm": lambda s: s["predicate"]["resources"][0].update(algorithm="sha512"),
    "duplicate": lambda s: s["predicate"]["resources"].append(s["predicate"]["resources"][0]),
}


@pytest.mark.parametrize("edit", list(STATEMENT_EDITS), ids=list(STATEMENT_EDITS))
def test_hostile_statement_signed_by_the_trusted_key(
    edit: str, signed: tuple[Path, bytes], keys: tuple[Path, Path]
) -> None:
    """Even a validly signed statement is checked field by field before anything trusts it."""
    statement = copy.deepcopy(_statement(signed[1]))
    STATEMENT_EDITS[edit](statement)
    with pytest.raises(SignatureFormatError):
        authenticate(_resign(statement, keys[0]), key=keys[1])


@pytest.mark.parametrize(
    ("shard_size", "name"),
    [
        (-1, "a.bin:0:1"),
        (1.5, "a.bin:0:1"),
        ("10", "a.bin:0:1"),
        (True, "a.bin:0:1"),
        (10, "a.bin"),
        (10, "a.bin:5:5"),
    ],
    ids=["negative", "fraction", "string", "bool", "no-offsets", "empty-range"],
)
def test_hostile_shard_serialization(
    shard_size: object, name: str, signed: tuple[Path, bytes], keys: tuple[Path, Path]
) -> None:
    statement = copy.deepcopy(_statement(signed[1]))
    statement["predicate"]["serialization"].update(method="shards", shard_size=shard_size)
    statement["predicate"]["resources"] = [
        {"name": name, "algorithm": "sha256-sharded-10", "digest": "0" * 64}
    ]
    statement["subject"][0]["digest"]["sha256"] = __import__("hashlib").sha256(bytes(32)).hexdigest()
    with pytest.raises(SignatureFormatError):
        authenticate(_resign(statement, keys[0]), key=keys[1])


def test_oversized_signature_refused_before_parsing(
    signed: tuple[Path, bytes], keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "MAX_SIGNATURE_BYTES", 100)
    from cairn.security.signing import envelope

    monkeypatch.setattr(envelope, "MAX_SIGNATURE_BYTES", 100)
    with pytest.raises(SignatureFormatError, match="more than 100"):
        verify(signed[0], key=keys[1])


def test_missing_signature_and_key_files(signed: tuple[Path, bytes], keys: tuple[Path, Path]) -> None:
    with pytest.raises(NotFoundError):
        verify(signed[0], key=keys[1], signature=signed[0] / "nope.sig")
    with pytest.raises(NotFoundError):
        verify(signed[0], key=signed[0] / "nope.pem")


def _write_pem(path: Path, key: Any, public: bool) -> Path:
    if public:
        path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda: rsa.generate_private_key(65537, 2048),
        lambda: ed25519.Ed25519PrivateKey.generate(),
        lambda: ec.generate_private_key(ec.SECP256K1()),
    ],
    ids=["rsa", "ed25519", "secp256k1"],
)
def test_unsupported_key_types(make: Any, tmp_path: Path) -> None:
    key = make()
    with pytest.raises(KeyFormatError):
        load_private_key(_write_pem(tmp_path / "k.pem", key, public=False))
    with pytest.raises(KeyFormatError):
        load_public_key(_write_pem(tmp_path / "k.pub.pem", key, public=True))


def test_garbage_and_swapped_keys(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    (tmp_path / "junk.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    for loader in (load_private_key, load_public_key):
        with pytest.raises(KeyFormatError) as exc:
            loader(tmp_path / "junk.pem")
        assert isinstance(exc.value, FormatError) and exc.value.path == str(tmp_path / "junk.pem")
    with pytest.raises(KeyFormatError):
        load_private_key(keys[1])  # a public key where the private one belongs
    with pytest.raises(KeyFormatError):
        load_public_key(keys[0])


def test_encrypted_key_needs_its_password(tmp_path: Path) -> None:
    private, _ = write_keypair(tmp_path / "enc", password=b"s3cret")
    with pytest.raises(KeyFormatError, match="password"):
        load_private_key(private)
    with pytest.raises(KeyFormatError):
        load_private_key(private, password=b"wrong")
    assert load_private_key(private, password=b"s3cret").curve.name == "secp256r1"


def test_file_names_with_colons_round_trip_in_shards_mode(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weird:0:5").write_bytes(b"0123456789")
    sign(model, key=keys[0], method="shards", shard_size=4)
    result = verify(model, key=keys[1])
    assert result.ok and result.files == ("weird:0:5",)


def _any_cert_pem() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
