"""The OMS signature file: a Sigstore bundle (v0.3 JSON) holding a DSSE envelope of an in-toto statement.

::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": "<sha256 of signer's PEM public key>"}   # key signing
                              | {"x509CertificateChain": {"certificates": [{"rawBytes": "<b64 DER>"}, ...]}},
                              "tlogEntries": []},
     "dsseEnvelope": {"payload": "<b64 statement JSON>", "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": "<b64 DER ECDSA over PAE(payloadType, payload)>", "keyid": ""}]}}

The statement is ``{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": model, "digest":
{"sha256": root}}], "predicateType": "https://model_signing/signature/v1.0", "predicate":
{"serialization": {...}, "resources": [...]}}``. This module reads and writes those bytes, checking every
field and size before it trusts it; it does no cryptography (see :mod:`.keys`, :mod:`.certificates`).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cairn.security.signing.errors import SignatureFormatError, UnsupportedSignatureError
from cairn.security.signing.manifest import Manifest, Serialization

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_SIGNATURE_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Bundle",
    "pae",
    "parse_bundle",
    "parse_statement",
    "statement_bytes",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
#: a signature file larger than this is refused before it is read (a million shards fit in ~200 MB)
MAX_SIGNATURE_BYTES = 256 << 20
_MAX_CERTIFICATES = 10


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is computed over."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def statement_bytes(manifest: Manifest) -> bytes:
    """The in-toto statement for ``manifest``, as the JSON bytes that get signed."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest.model_name, "digest": {"sha256": manifest.root_digest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": manifest.serialization.to_json(),
            "resources": [r.to_json() for r in manifest.resources],
        },
    }
    return json.dumps(statement, indent=2).encode()


def parse_statement(payload: bytes) -> Manifest:
    """The manifest in an (already authenticated) statement; the subject digest must match the resources."""
    data = _json(payload, "DSSE payload")
    if data.get("_type") != STATEMENT_TYPE:
        raise SignatureFormatError(f"payload _type {data.get('_type')!r} is not {STATEMENT_TYPE}")
    if data.get("predicateType") != PREDICATE_TYPE:
        raise SignatureFormatError(f"predicateType {data.get('predicateType')!r} is not {PREDICATE_TYPE}")
    subjects = data.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise SignatureFormatError("statement must have exactly one subject")
    name, digest = subjects[0].get("name", ""), subjects[0].get("digest")
    if not isinstance(name, str) or not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
        raise SignatureFormatError("subject lacks a name or a sha256 digest")
    predicate = data.get("predicate")
    if not isinstance(predicate, dict):
        raise SignatureFormatError("statement has no predicate object")
    serialization = Serialization.from_json(predicate.get("serialization"))
    manifest = Manifest.from_json(name, serialization, predicate.get("resources"))
    if manifest.root_digest() != digest["sha256"]:
        raise SignatureFormatError(
            f"subject digest {digest['sha256']} does not match the resources ({manifest.root_digest()})"
        )
    return manifest


@dataclass(frozen=True)
class Bundle:
    """A parsed signature file. Nothing in it is trusted until a verifier has checked ``signature``."""

    payload: bytes
    signature: bytes
    payload_type: str = PAYLOAD_TYPE
    key_hint: str | None = None
    #: DER certificates, signing certificate first, when signed with a certificate
    certificates: tuple[bytes, ...] = ()

    def to_json(self) -> bytes:
        material: dict[str, Any]
        if self.certificates:
            certs = [{"rawBytes": _b64(c)} for c in self.certificates]
            material = {"x509CertificateChain": {"certificates": certs}, "tlogEntries": []}
        else:
            material = {"publicKey": {"hint": self.key_hint or ""}, "tlogEntries": []}
        doc = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": _b64(self.payload),
                "payloadType": self.payload_type,
                "signatures": [{"sig": _b64(self.signature), "keyid": ""}],
            },
        }
        return json.dumps(doc, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureFormatError(f"{where} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(f"{where} is not valid base64") from None


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SignatureFormatError(
            f"{what} is not JSON ({err}); truncated or not a signature file?"
        ) from None
    except RecursionError:
        raise SignatureFormatError(f"{what} nests too deeply") from None
    if not isinstance(parsed, dict):
        raise SignatureFormatError(f"{what} is not a JSON object")
    return parsed


def _obj(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise SignatureFormatError(f"{where}{key} is missing or not an object")
    return value


def parse_bundle(data: bytes) -> Bundle:
    """Parse signature-file bytes into a :class:`Bundle`, or raise :class:`SignatureFormatError`."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureFormatError(f"signature is {len(data)} bytes, more than {MAX_SIGNATURE_BYTES}")
    doc = _json(data, "signature")
    if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise SignatureFormatError(f"mediaType {doc.get('mediaType')!r} is not {BUNDLE_MEDIA_TYPE}")
    envelope = _obj(doc, "dsseEnvelope", "")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise SignatureFormatError(f"payloadType {payload_type!r} is not {PAYLOAD_TYPE}")
    payload = _unb64(envelope.get("payload"), "dsseEnvelope.payload")
    sigs = envelope.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise SignatureFormatError("dsseEnvelope.signatures must hold exactly one signature")
    signature = _unb64(sigs[0].get("sig"), "dsseEnvelope.signatures[0].sig")
    material = _obj(doc, "verificationMaterial", "")
    certificates: tuple[bytes, ...] = ()
    hint: str | None = None
    if "x509CertificateChain" in material:
        chain = _obj(material, "x509CertificateChain", "verificationMaterial.").get("certificates")
        if not isinstance(chain, list) or not chain or len(chain) > _MAX_CERTIFICATES:
            raise SignatureFormatError(f"certificate chain must hold 1 to {_MAX_CERTIFICATES} certificates")
        certificates = tuple(
            _unb64(c.get("rawBytes") if isinstance(c, dict) else None, f"certificates[{i}].rawBytes")
            for i, c in enumerate(chain)
        )
    elif "publicKey" in material:
        raw_hint = _obj(material, "publicKey", "verificationMaterial.").get("hint")
        if raw_hint is not None and not isinstance(raw_hint, str):
            raise SignatureFormatError("verificationMaterial.publicKey.hint is not a string")
        hint = raw_hint or None
    elif "certificate" in material or material.get("tlogEntries"):
        raise UnsupportedSignatureError(
            "this is a Sigstore keyless bundle (Fulcio certificate, Rekor log entry); verifying it needs "
            "Sigstore's online trust root, which cairn does not use: sign with a key or a certificate chain"
        )
    else:
        raise SignatureFormatError("verificationMaterial has neither publicKey nor x509CertificateChain")
    return Bundle(payload, signature, payload_type, hint, certificates)
