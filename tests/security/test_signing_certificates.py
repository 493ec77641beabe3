"""Certificate mode: a signing certificate chained through intermediates to a trusted root."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cairn.errors import UsageError
from cairn.security.signing import (
    InvalidSignatureError,
    UntrustedCertificateError,
    sign,
    verify,
    write_keypair,
)

T0 = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    start: datetime.datetime = T0,
    end: datetime.datetime = T0 + 365 * DAY,
    usage: str = "sign",
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer[0].subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    elif usage == "sign":
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    elif usage == "codesign":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    elif usage == "tls":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(path: Path, *items: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    out = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            out += item.public_bytes(serialization.Encoding.PEM)
        else:
            out += item.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
    path.write_bytes(out)
    return path


class PKI:
    def __init__(self, tmp: Path, **leaf_options: object) -> None:
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = _cert("Test Root", self.root_key, None, ca=True, end=T0 + 3650 * DAY)
        self.mid_key = ec.generate_private_key(ec.SECP256R1())
        mid_ca = bool(leaf_options.pop("mid_ca", True))
        mid_end = leaf_options.pop("mid_end", T0 + 1000 * DAY)
        self.mid = _cert(
            "Test Intermediate",
            self.mid_key,
            (self.root, self.root_key),
            ca=mid_ca,
            end=mid_end,
            usage="none",
        )  # type: ignore[arg-type]
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _cert(
            "Model Publisher",
            self.leaf_key,
            (self.mid, self.mid_key),
            ca=False,
            start=T0 + DAY,
            **leaf_options,
        )  # type: ignore[arg-type]
        self.root_pem = _pem(tmp / "root.pem", self.root)
        self.mid_pem = _pem(tmp / "mid.pem", self.mid)
        self.leaf_pem = _pem(tmp / "leaf.pem", self.leaf)
        self.key_pem = _pem(tmp / "leaf.key", self.leaf_key)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "w.bin").write_bytes(b"w" * 999)
    return root


@pytest.mark.parametrize("usage", ["sign", "codesign"])
def test_chain_through_intermediate_verifies(model: Path, tmp_path: Path, usage: str) -> None:
    pki = PKI(tmp_path, usage=usage)
    signed = sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    assert signed.signer.kind == "certificate"
    result = verify(model, trusted=[pki.root_pem])
    assert result.ok and result.signer.subject == "CN=Model Publisher"
    (model / "w.bin").write_bytes(b"x")
    assert verify(model, trusted=[pki.root_pem]).changed == ("w.bin",)


def test_trusting_the_intermediate_is_enough(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    assert verify(model, trusted=[pki.mid_pem]).ok


def test_missing_intermediate_is_untrusted(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem)
    with pytest.raises(UntrustedCertificateError, match="no trusted root"):
        verify(model, trusted=[pki.root_pem])


def test_other_root_is_untrusted(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    (tmp_path / "other").mkdir()
    other = PKI(tmp_path / "other")
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    with pytest.raises(UntrustedCertificateError):
        verify(model, trusted=[other.root_pem])


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"usage": "tls"}, "may not sign"),
        ({"mid_ca": False}, "not a CA"),
        ({"mid_end": T0 + DAY / 2}, "not valid at signing time"),
    ],
    ids=["leaf-tls-only", "intermediate-not-ca", "intermediate-expired"],
)
def test_chain_policy_violations(
    model: Path, tmp_path: Path, options: dict[str, object], reason: str
) -> None:
    pki = PKI(tmp_path, **options)
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    with pytest.raises(UntrustedCertificateError, match=reason):
        verify(model, trusted=[pki.root_pem])


def test_self_made_certificate_with_the_same_name_is_untrusted(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged_mid = _cert("Test Intermediate", forged_key, None, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("Model Publisher", leaf_key, (forged_mid, forged_key), ca=False, start=T0 + DAY)
    sign(
        model,
        key=_pem(tmp_path / "f.key", leaf_key),
        certificate=_pem(tmp_path / "f.pem", leaf),
        chain=[_pem(tmp_path / "fm.pem", forged_mid)],
    )
    with pytest.raises(UntrustedCertificateError):
        verify(model, trusted=[pki.root_pem])


def test_modes_do_not_mix(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    private, public = write_keypair(tmp_path / "plain")
    with pytest.raises(UsageError, match="not for the signing key"):
        sign(model, key=private, certificate=pki.leaf_pem)
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    with pytest.raises(InvalidSignatureError, match="certificate"):
        verify(model, key=public)
    sign(model, key=private)
    with pytest.raises(InvalidSignatureError, match="bare key"):
        verify(model, trusted=[pki.root_pem])


def test_one_trust_policy_with_keys_and_roots(model: Path, tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    private, public = write_keypair(tmp_path / "plain")
    policy = {"key": [public], "trusted": [pki.root_pem]}
    sign(model, key=pki.key_pem, certificate=pki.leaf_pem, chain=[pki.mid_pem])
    assert verify(model, **policy).signer.kind == "certificate"  # type: ignore[arg-type]
    sign(model, key=private)
    assert verify(model, **policy).signer.kind == "key"  # type: ignore[arg-type]
