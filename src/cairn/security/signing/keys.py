"""Elliptic-curve keys for OMS key signing: generate, load PEM, sign and verify DSSE bytes.

OMS signs with ECDSA over the curves Sigstore's specs name (P-256, P-384, P-521), hashing with SHA-256,
SHA-384 or SHA-512 to match the curve. A key is identified by its *fingerprint*: the sha256 of its public
key as PEM SubjectPublicKeyInfo, which is what OMS bundles carry as ``verificationMaterial.publicKey.hint``.

``cryptography`` is imported here only; it is the ``trust`` extra of cairn.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cairn.errors import ConflictError, NotFoundError
from cairn.security.signing.errors import KeyFormatError

__all__ = [
    "CURVES",
    "MAX_PEM_BYTES",
    "fingerprint",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "sign_bytes",
    "verify_bytes",
    "write_keypair",
]

#: curve name → the hash OMS pairs with it
CURVES: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
MAX_PEM_BYTES = 1 << 20


def _read_pem(path: str | Path, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: no such {what} file")
    if p.stat().st_size > MAX_PEM_BYTES:
        raise KeyFormatError(f"{what} file larger than {MAX_PEM_BYTES} bytes", path=p)
    return p.read_bytes()


def _check_curve(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey, path: str | Path) -> None:
    if key.curve.name not in CURVES:
        raise KeyFormatError(
            f"curve {key.curve.name} is not supported (use one of {', '.join(CURVES)})", path=path
        )


def generate_key(curve: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    """A fresh private key on ``curve`` (one of :data:`CURVES`)."""
    if curve not in CURVES:
        raise KeyFormatError(f"curve {curve!r} is not supported (use one of {', '.join(CURVES)})")
    return ec.generate_private_key(getattr(ec, curve.upper())())


def write_keypair(
    prefix: str | Path, *, curve: str = "secp256r1", password: bytes | None = None
) -> tuple[Path, Path]:
    """Write ``PREFIX.pem`` (private, mode 0600) and ``PREFIX.pub.pem``; refuse to overwrite either."""
    private_path, public_path = Path(f"{prefix}.pem"), Path(f"{prefix}.pub.pem")
    for p in (private_path, public_path):
        if p.exists():
            raise ConflictError(f"{p}: already exists; refusing to overwrite a key")
    key = generate_key(curve)
    algo: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(_public_pem(key.public_key()))
    return private_path, public_path


def load_private_key(path: str | Path, *, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    data = _read_pem(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as err:  # a password was needed, or given for an unencrypted key
        raise KeyFormatError(f"private key password: {err}", path=path) from None
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFormatError(f"not a PEM private key ({err})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFormatError(f"{type(key).__name__} is not an elliptic-curve key", path=path)
    _check_curve(key, path)
    return key


def load_public_key(path: str | Path) -> ec.EllipticCurvePublicKey:
    data = _read_pem(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFormatError(f"not a PEM public key ({err})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFormatError(f"{type(key).__name__} is not an elliptic-curve key", path=path)
    _check_curve(key, path)
    return key


def _public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """sha256 (hex) of the key's PEM SubjectPublicKeyInfo: the OMS public-key hint."""
    return hashlib.sha256(_public_pem(key)).hexdigest()


def sign_bytes(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER-encoded ECDSA signature of ``data`` with the hash that belongs to the key's curve."""
    return key.sign(data, ec.ECDSA(CURVES[key.curve.name]()))


def verify_bytes(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s ECDSA signature of ``data``."""
    try:
        key.verify(signature, data, ec.ECDSA(CURVES[key.curve.name]()))
    except InvalidSignature:
        return False
    return True
