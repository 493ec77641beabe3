"""``cairn keygen``, ``cairn sign`` and ``cairn verify``: OMS signatures of model directories.

Exit statuses: 0 signed / verified; 1 verification failed (content differs, wrong key, bad signature,
untrusted certificate); 2 error (missing files, malformed signature or key, refused symlink, bad usage).
"""

from __future__ import annotations

import argparse
from typing import Any

from cairn.cli.output import EXIT_NEGATIVE, EXIT_OK, emit, emit_error
from cairn.errors import UsageError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("keygen", help="create an elliptic-curve key pair for signing")
    p.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.pem and PREFIX.pub.pem")
    p.add_argument("--curve", default="secp256r1", choices=["secp256r1", "secp384r1", "secp521r1"])
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_keygen)

    p = subparsers.add_parser("sign", help="sign a model directory (OpenSSF Model Signing format)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--key", required=True, metavar="PRIVATE", help="PEM private key")
    p.add_argument("--signature", metavar="PATH", help="where to write the signature (default DIR/model.sig)")
    p.add_argument("--certificate", metavar="PEM", help="signing certificate for the key (certificate mode)")
    p.add_argument("--chain", nargs="*", default=[], metavar="PEM", help="intermediate certificates")
    p.add_argument(
        "--method",
        choices=["files", "shards"],
        default="files",
        help="files (default; what the model_signing CLI verifies) or shards (hash big files in parallel)",
    )
    p.add_argument("--shard-size", type=int, default=1_000_000_000, help="bytes per shard (default 1 GB)")
    p.add_argument("--ignore", action="append", default=[], metavar="PATH", help="path to leave unsigned")
    p.add_argument("--no-ignore-git", action="store_true", help="also sign .git, .gitignore, ...")
    p.add_argument("--allow-symlinks", action="store_true", help="follow symlinks to files")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_sign)

    p = subparsers.add_parser("verify", help="verify a model directory against its OMS signature")
    p.add_argument("dir", metavar="DIR")
    p.add_argument(
        "--key", action="append", metavar="PUBLIC", help="PEM public key of a trusted signer (repeatable)"
    )
    p.add_argument("--trust", nargs="+", metavar="PEM", help="trusted root certificates (certificate mode)")
    p.add_argument("--signature", metavar="PATH", help="the signature file (default DIR/model.sig)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_verify)


def _keygen(args: argparse.Namespace) -> int:
    from cairn.security.signing.keys import fingerprint as fp
    from cairn.security.signing.keys import load_public_key, write_keypair

    private, public = write_keypair(args.out, curve=args.curve)
    data = {
        "private_key": str(private),
        "public_key": str(public),
        "fingerprint": fp(load_public_key(public)),
    }
    emit(data, as_json=args.json, human=lambda d: f"wrote {d['private_key']} and {d['public_key']}")
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    from cairn.security.signing import sign

    result = sign(
        args.dir,
        key=args.key,
        signature=args.signature,
        certificate=args.certificate,
        chain=args.chain,
        method=args.method,
        shard_size=args.shard_size,
        ignore=args.ignore,
        ignore_git=not args.no_ignore_git,
        allow_symlinks=args.allow_symlinks,
    )
    data = {
        "signature": result.signature_path,
        "signer": str(result.signer),
        "root_digest": result.root_digest,
        "files": list(result.manifest.files()),
        "resources": len(result.manifest.resources),
    }
    emit(data, as_json=args.json, human=lambda d: f"signed {len(d['files'])} files → {d['signature']}")
    return EXIT_OK


def _human(d: dict[str, Any]) -> str:
    if d["verified"]:
        return f"verified: {len(d['files'])} files signed by {d['signer_text']}"
    lines = [f"VERIFICATION FAILED: content differs from what {d['signer_text']} signed"]
    for label in ("changed", "added", "removed"):
        lines += [f"  {label}: {name}" for name in d[label]]
    return "\n".join(lines)


def _verify(args: argparse.Namespace) -> int:
    from cairn.security.signing import VerificationError, verify

    if not args.key and not args.trust:
        raise UsageError("give --key PUBLIC (a signer's key) and/or --trust PEM (trusted root certificates)")
    try:
        result = verify(args.dir, key=args.key, trusted=args.trust or (), signature=args.signature)
    except VerificationError as err:
        emit_error(err, as_json=args.json)
        return EXIT_NEGATIVE
    data = result.to_dict()
    emit(data, as_json=args.json, human=lambda d: _human({**d, "signer_text": str(result.signer)}))
    return EXIT_OK if result.ok else EXIT_NEGATIVE
