"""Verifying a revision's ``model.sig`` (OpenSSF Model Signing) on the hub, from stored sha256s only.

:func:`verify_tree` authenticates the signature bytes against the trusted public keys (the repo's and the
server's), then compares the signed manifest with the manifest of the tree built from the file digests
the registry already holds (``Manifest.from_file_digests``), so no file is re-read. The result is a plain
JSON-able record: ``status`` is ``none`` (no signature), ``verified`` (valid and matching, with the
signer), ``unverified`` (no trusted key to check it with), or ``invalid`` (with the reason).

Needs the ``trust`` extra (``cryptography``), imported only when a tree carries a signature or keys are
configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cairn.errors import CairnError, UsageError

__all__ = ["load_keys", "verify_tree"]

_MAX_KEYS = 64


def load_keys(pems: Sequence[str]) -> list[Any]:
    """Parse PEM public keys (EC); :class:`UsageError` naming the first one that does not parse."""
    if len(pems) > _MAX_KEYS:
        raise UsageError(f"at most {_MAX_KEYS} trusted keys")
    if not pems:
        return []
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    out = []
    for i, pem in enumerate(pems):
        if not isinstance(pem, str) or len(pem) > 16384:
            raise UsageError(f"trusted key #{i + 1} must be a PEM string")
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            raise UsageError(f"trusted key #{i + 1} is not a PEM public key") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise UsageError(f"trusted key #{i + 1} is not an elliptic-curve key")
        out.append(key)
    return out


def verify_tree(
    present: bool, signature: bytes | None, trusted: Sequence[str], digests: Mapping[str, str]
) -> dict[str, Any]:
    """The signature record of a tree whose files have sha256 ``digests`` (see the module docstring)."""
    if not present:
        return {"status": "none", "reason": "the revision has no model.sig"}
    if signature is None:
        return {"status": "invalid", "reason": "model.sig is larger than any signature file"}
    if not trusted:
        return {"status": "unverified", "reason": "no trusted keys are configured for this repository"}
    from cairn.security.signing import Manifest, authenticate, check

    try:
        signed = authenticate(signature, key=load_keys(trusted))
        actual = Manifest.from_file_digests(dict(digests), signed.manifest.serialization)
        result = check(signed, actual, signature_path="model.sig")
    except CairnError as err:
        return {"status": "invalid", "reason": str(err)[:500]}
    signer = {
        "kind": result.signer.kind,
        "fingerprint": result.signer.fingerprint,
        "subject": result.signer.subject,
        "name": str(result.signer),
    }
    if not result.ok:
        what = [*(f"changed {p}" for p in result.changed), *(f"added {p}" for p in result.added)]
        what += [f"removed {p}" for p in result.removed]
        return {
            "status": "invalid",
            "reason": "files differ from the signed manifest: " + ", ".join(what[:20]),
            "signer": signer,
        }
    return {
        "status": "verified",
        "signer": signer,
        "rootDigest": result.root_digest,
        "files": len(result.files),
    }
