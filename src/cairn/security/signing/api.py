"""Sign a model directory and verify it: hash → manifest → sign; verify → re-hash → compare.

:func:`sign` and :func:`verify` are the whole job for a directory on disk. The hub and the client need
the steps apart, so they are public too: :func:`authenticate` checks a signature's bytes against a key or
trusted roots and returns the :class:`SignedManifest` it vouches for; :func:`check` compares that manifest
with an actual one (hashed from disk by :func:`~cairn.security.signing.hashing.hash_model`, or built from
digests already stored — with ``method="files"`` a resource digest is the file's plain sha256).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from cairn.errors import CairnError, NotFoundError, PermissionDeniedError, UsageError
from cairn.security.signing import certificates, keys
from cairn.security.signing.envelope import (
    MAX_SIGNATURE_BYTES,
    PAYLOAD_TYPE,
    Bundle,
    pae,
    parse_bundle,
    parse_statement,
    statement_bytes,
)
from cairn.security.signing.errors import ContentMismatchError, InvalidSignatureError, WrongKeyError
from cairn.security.signing.hashing import hash_model
from cairn.security.signing.manifest import (
    DEFAULT_IGNORE_PATHS,
    DEFAULT_SHARD_SIZE,
    Manifest,
    Serialization,
    compare,
)

__all__ = [
    "DEFAULT_SIGNATURE_NAME",
    "SignResult",
    "SignedManifest",
    "Signer",
    "VerificationResult",
    "authenticate",
    "check",
    "sign",
    "verify",
]

DEFAULT_SIGNATURE_NAME = "model.sig"

PrivateKeyLike = str | Path | ec.EllipticCurvePrivateKey
PublicKeyLike = str | Path | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Signer:
    """Who signed: a bare key (by fingerprint) or a certificate (subject, and its key's fingerprint)."""

    kind: Literal["key", "certificate"]
    fingerprint: str
    subject: str = ""

    def __str__(self) -> str:
        return self.subject if self.kind == "certificate" else f"key sha256:{self.fingerprint}"


@dataclass(frozen=True)
class SignedManifest:
    """A manifest whose signature has been checked, and who signed it."""

    manifest: Manifest
    signer: Signer


@dataclass(frozen=True)
class SignResult:
    signature_path: str
    manifest: Manifest
    signer: Signer

    @property
    def root_digest(self) -> str:
        return self.manifest.root_digest()


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of a verification whose signature was valid: what the signer vouched for, what differs."""

    ok: bool
    signer: Signer
    model_name: str
    root_digest: str
    serialization: Serialization
    #: files the signature covers, in manifest order
    files: tuple[str, ...]
    changed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: resource name → (signed digest, actual digest), "" where a side lacks it
    differences: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    signature_path: str | None = None

    def raise_for_mismatch(self) -> None:
        """Raise :class:`ContentMismatchError` unless the content matched."""
        if not self.ok:
            raise ContentMismatchError(changed=self.changed, added=self.added, removed=self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.ok,
            "signer": {
                "kind": self.signer.kind,
                "fingerprint": self.signer.fingerprint,
                "subject": self.signer.subject,
            },
            "model_name": self.model_name,
            "root_digest": self.root_digest,
            "serialization": self.serialization.to_json(),
            "files": list(self.files),
            "changed": list(self.changed),
            "added": list(self.added),
            "removed": list(self.removed),
            "differences": {k: {"signed": a, "actual": b} for k, (a, b) in self.differences.items()},
            "signature_path": self.signature_path,
        }


def _private_key(key: PrivateKeyLike, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    return (
        key if isinstance(key, ec.EllipticCurvePrivateKey) else keys.load_private_key(key, password=password)
    )


def _public_key(key: PublicKeyLike) -> ec.EllipticCurvePublicKey:
    return key if isinstance(key, ec.EllipticCurvePublicKey) else keys.load_public_key(key)


def _roots(trusted: Sequence[str | Path | x509.Certificate]) -> list[x509.Certificate]:
    paths = [t for t in trusted if not isinstance(t, x509.Certificate)]
    return [t for t in trusted if isinstance(t, x509.Certificate)] + certificates.load_certificates(paths)


def _signature_path(model_dir: Path, signature: str | Path | None) -> Path:
    return Path(signature) if signature is not None else model_dir / DEFAULT_SIGNATURE_NAME


def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` as posix, or None when it lies outside."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


@contextmanager
def _typed_os_errors() -> Iterator[None]:
    """Turn the operating system's errors (vanished files, permissions, full disks) into cairn errors."""
    try:
        yield
    except FileNotFoundError as err:
        raise NotFoundError(f"{err.filename}: {err.strerror}") from None
    except PermissionError as err:
        raise PermissionDeniedError(f"{err.filename}: {err.strerror}") from None
    except IsADirectoryError as err:
        raise UsageError(f"{err.filename}: is a directory") from None
    except OSError as err:
        raise CairnError(f"{err.filename or ''}: {err.strerror or err}") from None


def _check_ignore(paths: Sequence[str]) -> list[str]:
    out = []
    for p in paths:
        clean = p.strip("/")
        parts = clean.split("/")
        if not clean or p.startswith("/") or any(c in ("", ".", "..") for c in parts):
            raise UsageError(f"ignore path {p!r} must be a relative path inside the model directory")
        out.append(clean)
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # a signature is public; mkstemp would leave it 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sign(
    model_dir: str | Path,
    *,
    key: PrivateKeyLike,
    signature: str | Path | None = None,
    certificate: str | Path | None = None,
    chain: Sequence[str | Path] = (),
    password: bytes | None = None,
    method: Literal["files", "shards"] = "files",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore: Sequence[str] = (),
    ignore_git: bool = True,
    allow_symlinks: bool = False,
    workers: int | None = None,
) -> SignResult:
    """Sign the directory ``model_dir`` with an EC private key; write the OMS bundle (default ``DIR/model.sig``).

    With ``certificate`` (PEM, for the same key) and ``chain`` (PEM intermediates), the bundle carries the
    certificate chain instead of a key hint, for :func:`verify` with ``trusted`` roots.
    """
    with _typed_os_errors():
        root = Path(model_dir)
        ignore = _check_ignore(ignore)
        if not root.is_dir():
            raise NotFoundError(f"{root}: no such model directory")
        if method not in ("files", "shards") or shard_size < 1:
            raise UsageError(
                f"method must be 'files' or 'shards' and shard_size positive, got {method!r}, {shard_size}"
            )
        private = _private_key(key, password)
        sig_path = _signature_path(root, signature)
        ignored = [*(DEFAULT_IGNORE_PATHS if ignore_git else ()), *ignore]
        rel_sig = _inside(sig_path, root)
        if rel_sig is not None:
            ignored.append(rel_sig)
        serialization = Serialization(
            method, shard_size, "sha256", allow_symlinks, tuple(dict.fromkeys(ignored))
        )
        fp = keys.fingerprint(private.public_key())
        chain_der: tuple[bytes, ...] = ()
        signer = Signer("key", fp)
        if certificate is not None:
            certs = certificates.load_certificates([certificate])
            if not certs or certs[0].public_key() != private.public_key():
                raise UsageError(f"{certificate}: certificate is not for the signing key")
            extra = certificates.load_certificates(chain)
            chain_der = tuple(c.public_bytes(Encoding.DER) for c in [certs[0], *extra])
            signer = Signer("certificate", fp, certs[0].subject.rfc4514_string())
        manifest = hash_model(root, serialization, workers=workers)
        payload = statement_bytes(manifest)
        bundle = Bundle(
            payload=payload,
            signature=keys.sign_bytes(private, pae(PAYLOAD_TYPE, payload)),
            key_hint=None if chain_der else fp,
            certificates=chain_der,
        )
        _write_atomically(sig_path, bundle.to_json())
        return SignResult(str(sig_path), manifest, signer)


def authenticate(
    bundle: bytes | Bundle,
    *,
    key: PublicKeyLike | Sequence[PublicKeyLike] | None = None,
    trusted: Sequence[str | Path | x509.Certificate] = (),
) -> SignedManifest:
    """Check a signature (file bytes or parsed) against a trust policy: public keys and/or trusted roots.

    ``key`` may be one key or several publishers' keys; the bundle's key hint picks which. A bundle made
    with a bare key is checked against ``key``, one made with a certificate chain against ``trusted``.
    Raises :class:`WrongKeyError` / :class:`InvalidSignatureError` /
    :class:`~cairn.security.signing.errors.UntrustedCertificateError` when it does not verify, and
    :class:`~cairn.security.signing.errors.SignatureFormatError` when the bytes are not an OMS bundle.
    """
    parsed = bundle if isinstance(bundle, Bundle) else parse_bundle(bundle)
    if key is None and not trusted:
        raise UsageError("verify with public key(s), trusted root certificates, or both")
    data = pae(parsed.payload_type, parsed.payload)
    if not parsed.certificates:
        if key is None:
            raise InvalidSignatureError("signature was made with a bare key; verify it with the public key")
        signer = _check_with_keys(parsed, key, data)
    else:
        if not trusted:
            raise InvalidSignatureError(
                "signature was made with a certificate; verify it against trusted roots"
            )
        public, subject = certificates.verify_chain(parsed.certificates, _roots(trusted))
        fp = keys.fingerprint(public)
        if not keys.verify_bytes(public, parsed.signature, data):
            raise InvalidSignatureError(
                "signature does not verify with the certificate's key: tampered signature", key_fingerprint=fp
            )
        signer = Signer("certificate", fp, subject)
    return SignedManifest(parse_statement(parsed.payload), signer)


def _check_with_keys(parsed: Bundle, key: PublicKeyLike | Sequence[PublicKeyLike], data: bytes) -> Signer:
    given: list[PublicKeyLike] = (
        [key] if isinstance(key, str | Path | ec.EllipticCurvePublicKey) else list(key)
    )
    candidates = [_public_key(k) for k in given]
    if not candidates:
        raise UsageError("no public keys to verify with")
    by_fp = {keys.fingerprint(k): k for k in candidates}
    if parsed.key_hint is not None:
        if parsed.key_hint not in by_fp:
            raise WrongKeyError(expected=parsed.key_hint, actual=", ".join(by_fp))
        by_fp = {parsed.key_hint: by_fp[parsed.key_hint]}
    for fp, public in by_fp.items():  # without a hint (older bundles), any of the keys may have signed
        if keys.verify_bytes(public, parsed.signature, data):
            return Signer("key", fp)
    raise InvalidSignatureError(
        "signature does not verify over the envelope: wrong key or tampered signature",
        key_fingerprint=", ".join(by_fp),
    )


def check(
    signed: SignedManifest, actual: Manifest, *, signature_path: str | None = None
) -> VerificationResult:
    """Compare an authenticated manifest with the actual one; the result says exactly what differs."""
    diff = compare(signed.manifest, actual)
    return VerificationResult(
        ok=diff.ok,
        signer=signed.signer,
        model_name=signed.manifest.model_name,
        root_digest=signed.manifest.root_digest(),
        serialization=signed.manifest.serialization,
        files=signed.manifest.files(),
        changed=diff.changed,
        added=diff.added,
        removed=diff.removed,
        differences=dict(diff.resources),
        signature_path=signature_path,
    )


def verify(
    model_dir: str | Path,
    *,
    key: PublicKeyLike | Sequence[PublicKeyLike] | None = None,
    trusted: Sequence[str | Path | x509.Certificate] = (),
    signature: str | Path | None = None,
    workers: int | None = None,
) -> VerificationResult:
    """Verify ``model_dir`` against its OMS signature (default ``DIR/model.sig``).

    The signature is checked first (raising as :func:`authenticate` does); then the directory is hashed
    the way the signed manifest says and compared. Content differences do not raise: the result's ``ok``
    is false and ``changed`` / ``added`` / ``removed`` name the files (see
    :meth:`VerificationResult.raise_for_mismatch`).
    """
    with _typed_os_errors():
        root = Path(model_dir)
        if not root.is_dir():
            raise NotFoundError(f"{root}: no such model directory")
        sig_path = _signature_path(root, signature)
        if not sig_path.is_file():
            raise NotFoundError(f"{sig_path}: no such signature file")
        signed = authenticate(_read_limited(sig_path, MAX_SIGNATURE_BYTES), key=key, trusted=trusted)
        serialization = signed.manifest.serialization
        rel_sig = _inside(sig_path, root)
        if rel_sig is not None and rel_sig not in serialization.ignore_paths:
            serialization = replace(serialization, ignore_paths=(*serialization.ignore_paths, rel_sig))
        actual = hash_model(root, serialization, workers=workers)
        return check(signed, actual, signature_path=str(sig_path))


def _read_limited(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        data = f.read(limit + 1)
    return data  # parse_bundle refuses anything over the limit
