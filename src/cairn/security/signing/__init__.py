"""Sign and verify model directories in the OpenSSF Model Signing (OMS) format.

Data flows hash → manifest → sign, and verify → re-hash → compare:

- :mod:`.hashing` walks a directory (ignore paths, symlink policy) and hashes files or shards in parallel
  into a :class:`~.manifest.Manifest`;
- :mod:`.envelope` writes and reads the signature file: a Sigstore bundle with a DSSE envelope around an
  in-toto statement whose predicate is the manifest (what sigstore/model-transparency writes);
- :mod:`.keys` holds EC keys (PEM) and ECDSA; :mod:`.certificates` checks X.509 chains to trusted roots;
- :mod:`.api` puts it together: :func:`sign`, :func:`verify`, and the steps :func:`authenticate` /
  :func:`check` for callers (the hub, the client) that have the signature bytes and stored digests.

Only this subpackage imports ``cryptography`` (the ``trust`` extra); ``import cairn`` does not load it.
"""

from __future__ import annotations

from cairn.security.signing.api import (
    DEFAULT_SIGNATURE_NAME,
    SignedManifest,
    Signer,
    SignResult,
    VerificationResult,
    authenticate,
    check,
    sign,
    verify,
)
from cairn.security.signing.errors import (
    ContentMismatchError,
    InvalidSignatureError,
    KeyFormatError,
    SignatureFormatError,
    SymlinkRefusedError,
    UnsupportedSignatureError,
    UntrustedCertificateError,
    VerificationError,
    WrongKeyError,
)
from cairn.security.signing.hashing import hash_model
from cairn.security.signing.keys import generate_key, write_keypair
from cairn.security.signing.manifest import Manifest, Resource, Serialization

__all__ = [
    "DEFAULT_SIGNATURE_NAME",
    "ContentMismatchError",
    "InvalidSignatureError",
    "KeyFormatError",
    "Manifest",
    "Resource",
    "Serialization",
    "SignResult",
    "SignatureFormatError",
    "SignedManifest",
    "Signer",
    "SymlinkRefusedError",
    "UnsupportedSignatureError",
    "UntrustedCertificateError",
    "VerificationError",
    "VerificationResult",
    "WrongKeyError",
    "authenticate",
    "check",
    "generate_key",
    "hash_model",
    "sign",
    "verify",
    "write_keypair",
]
