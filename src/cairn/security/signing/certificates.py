"""Certificate-chain verification for OMS signatures made with an X.509 signing certificate.

The bundle carries the signing certificate followed by intermediates. A signature is trusted when a path
leads from the signing certificate, through those intermediates, to one of the caller's trusted roots:

- each link is checked with ``verify_directly_issued_by`` (issuer name and signature);
- every certificate on the path must be valid at the signing time. As OMS does, and because key-signed
  bundles carry no timestamp, the signing time is taken to be the signing certificate's ``notBefore``;
- every issuer must be a CA (basicConstraints) allowed to sign certificates (keyUsage, when present);
- the signing certificate must allow digital signatures (keyUsage) or code signing (extendedKeyUsage),
  and hold an elliptic-curve key of a supported curve.

There is no revocation checking (no network) and no path-length or name-constraint enforcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from cairn.errors import NotFoundError
from cairn.security.signing.errors import KeyFormatError, SignatureFormatError, UntrustedCertificateError
from cairn.security.signing.keys import CURVES, MAX_PEM_BYTES

__all__ = ["MAX_CHAIN_DEPTH", "load_certificates", "verify_chain"]

MAX_CHAIN_DEPTH = 8


def load_certificates(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    """Every PEM certificate in the given files."""
    out: list[x509.Certificate] = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise NotFoundError(f"{p}: no such certificate file")
        if p.stat().st_size > MAX_PEM_BYTES:
            raise KeyFormatError(f"certificate file larger than {MAX_PEM_BYTES} bytes", path=p)
        try:
            out.extend(x509.load_pem_x509_certificates(p.read_bytes()))
        except ValueError as err:
            raise KeyFormatError(f"not PEM certificates ({err})", path=p) from None
    return out


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _check_time(cert: x509.Certificate, at: datetime) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise UntrustedCertificateError(
            f"not valid at signing time {at.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})",
            subject=_subject(cert),
        )


def _check_ca(cert: x509.Certificate) -> None:
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        raise UntrustedCertificateError("issues certificates but is not a CA", subject=_subject(cert))
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise UntrustedCertificateError("CA key usage lacks keyCertSign", subject=_subject(cert))


def _check_signing_use(cert: x509.Certificate) -> None:
    try:
        if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return
    except x509.ExtensionNotFound:
        pass
    try:
        if (
            ExtendedKeyUsageOID.CODE_SIGNING
            in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ):
            return
    except x509.ExtensionNotFound:
        pass
    raise UntrustedCertificateError(
        "may not sign (neither keyUsage digitalSignature nor extendedKeyUsage codeSigning)",
        subject=_subject(cert),
    )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError):  # bad signature, or a name/algorithm mismatch
        return False
    return True


def verify_chain(
    chain_der: Sequence[bytes], trusted: Sequence[x509.Certificate]
) -> tuple[ec.EllipticCurvePublicKey, str]:
    """Check the bundle's chain against ``trusted`` roots; the signing key and its subject if trusted."""
    if not trusted:
        raise UntrustedCertificateError("no trusted root certificates were given")
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der]
    except ValueError as err:
        raise SignatureFormatError(f"a bundled certificate is not DER X.509 ({err})") from None
    leaf, pool = chain[0], chain[1:]
    subject = _subject(leaf)
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise UntrustedCertificateError(
            "signing certificate does not hold a supported EC key", subject=subject
        )
    _check_signing_use(leaf)
    at = leaf.not_valid_before_utc
    trusted_der = {c.public_bytes(Encoding.DER) for c in trusted}
    current = leaf
    for _ in range(MAX_CHAIN_DEPTH):
        _check_time(current, at)
        if current.public_bytes(Encoding.DER) in trusted_der and current is not leaf:
            return key, subject
        roots = [c for c in trusted if _issued_by(current, c)]
        if roots:
            _check_ca(roots[0])
            _check_time(roots[0], at)
            return key, subject
        parents = [c for c in pool if c is not current and _issued_by(current, c)]
        if not parents:
            raise UntrustedCertificateError(
                f"no trusted root or bundled intermediate issued {_subject(current)}", subject=subject
            )
        _check_ca(parents[0])
        current = parents[0]
    raise UntrustedCertificateError(f"chain longer than {MAX_CHAIN_DEPTH}", subject=subject)
