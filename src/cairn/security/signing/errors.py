"""Typed errors of signing and verification, all subclasses of :mod:`cairn.errors`.

Two families, because callers must treat them differently:

- *could not check* — a malformed or truncated signature file, an unreadable key, a symlink that was not
  allowed: :class:`SignatureFormatError`, :class:`KeyFormatError` (both :class:`~cairn.errors.FormatError`),
  :class:`SymlinkRefusedError` (:class:`~cairn.errors.UnsafeContentError`). The CLI exits 2.
- *checked, and it does not vouch for these bytes* — :class:`VerificationError` and its subclasses: a
  signature made by another key, a tampered envelope, a certificate that does not chain to a trusted root,
  content that differs from the signed manifest. The CLI exits 1.

::

    FormatError
    ├── SignatureFormatError         not an OMS bundle we can read (detail says which field)
    │   └── UnsupportedSignatureError  a valid bundle of a kind cairn does not verify (Sigstore keyless)
    └── KeyFormatError               not a PEM key/certificate of a supported elliptic curve
    UnsafeContentError
    └── SymlinkRefusedError          a symlink inside the model, and symlinks were not allowed
    VerificationError
    ├── InvalidSignatureError        the DSSE signature does not verify with the given key
    │   └── WrongKeyError            the bundle names another key than the one given
    ├── UntrustedCertificateError    the signing certificate does not chain to a trusted root
    └── ContentMismatchError         files changed, added or removed since signing
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cairn.errors import CairnError, FormatError, UnsafeContentError

__all__ = [
    "ContentMismatchError",
    "InvalidSignatureError",
    "KeyFormatError",
    "SignatureFormatError",
    "SymlinkRefusedError",
    "UnsupportedSignatureError",
    "UntrustedCertificateError",
    "VerificationError",
    "WrongKeyError",
]


class SignatureFormatError(FormatError):
    """The signature file is not an OMS bundle that cairn can read (malformed, truncated, unsupported)."""

    code = "bad_signature"


class UnsupportedSignatureError(SignatureFormatError):
    """A well-formed bundle of a kind cairn does not verify: Sigstore keyless (needs the online trust root)."""

    code = "unsupported_signature"


class KeyFormatError(FormatError):
    """A key or certificate file that is not PEM of a supported elliptic curve."""

    code = "bad_key"


class SymlinkRefusedError(UnsafeContentError):
    """A symbolic link inside the model directory, and symlinks were not allowed."""

    code = "symlink_refused"

    def __init__(self, path: str | Path, *, target: str = "") -> None:
        super().__init__(
            f"{path}: is a symbolic link{f' to {target}' if target else ''}; "
            "sign with allow_symlinks (--allow-symlinks) to follow links to files"
        )
        self.path = str(path)
        self.target = target


class VerificationError(CairnError):
    """The signature was checked and does not vouch for the content."""

    code = "verification_failed"


class InvalidSignatureError(VerificationError):
    """The DSSE signature does not verify over the envelope's payload with the key given."""

    code = "invalid_signature"

    def __init__(self, message: str, *, key_fingerprint: str = "") -> None:
        super().__init__(message)
        self.key_fingerprint = key_fingerprint


class WrongKeyError(InvalidSignatureError):
    """The bundle says which public key made it (its hint), and that is not the key given."""

    code = "wrong_key"

    def __init__(self, *, expected: str, actual: str) -> None:
        super().__init__(
            f"signature was made by key {expected[:16]}…, not by the given key {actual[:16]}…",
            key_fingerprint=actual,
        )
        self.expected = expected
        self.actual = actual


class UntrustedCertificateError(VerificationError):
    """The signing certificate chain does not lead to a trusted root, or may not sign."""

    code = "untrusted_certificate"

    def __init__(self, reason: str, *, subject: str = "") -> None:
        super().__init__(f"certificate {subject or '(unknown)'} is not trusted: {reason}")
        self.reason = reason
        self.subject = subject


class ContentMismatchError(VerificationError):
    """The signature is valid, but files differ from the signed manifest."""

    code = "content_mismatch"

    def __init__(self, *, changed: Sequence[str], added: Sequence[str], removed: Sequence[str]) -> None:
        parts = []
        for label, names in (("changed", changed), ("added", added), ("removed", removed)):
            if names:
                shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
                parts.append(f"{label}: {shown}")
        super().__init__("content differs from the signed manifest — " + "; ".join(parts))
        self.changed = list(changed)
        self.added = list(added)
        self.removed = list(removed)
