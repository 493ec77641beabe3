"""Write the golden signatures of ``model/`` for the installed cairn and model_signing versions.

Run once per release from this directory (``../../../.venv/bin/python make_golden.py``) and commit the new
``*.sig`` files; never overwrite existing ones: tests keep verifying every golden file ever written. The
private keys are throwaway: only ``signer.pub.pem`` and ``root.pem`` are kept (and reused when present,
so that one public key and one root verify the signatures of every version).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from safetensors.numpy import save_file

from cairn.security.signing import sign, write_keypair

HERE = Path(__file__).parent


def make_model(model: Path) -> None:
    (model / "weights").mkdir(parents=True, exist_ok=True)
    save_file(
        {"embed": np.arange(64, dtype=np.float32).reshape(8, 8)}, str(model / "weights" / "model.safetensors")
    )
    (model / "config.json").write_text('{"architectures": ["Tiny"], "hidden_size": 8}\n')
    (model / "empty.txt").write_bytes(b"")
    (model / "README.md").write_text("# tiny golden model\n")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(tmp: Path) -> tuple[Path, Path, Path]:
    """A P-256 root, a P-384 intermediate and a P-256 code-signing leaf; returns (leaf key, leaf, intermediate)."""
    now = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    root_key, mid_key, leaf_key = (
        ec.generate_private_key(c) for c in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP256R1())
    )
    root = (
        x509.CertificateBuilder().subject_name(_name("cairn golden root")).issuer_name(_name("cairn golden root"))
        .public_key(root_key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    mid = (
        x509.CertificateBuilder().subject_name(_name("cairn golden intermediate")).issuer_name(root.subject)
        .public_key(mid_key.public_key()).serial_number(3)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(_name("cairn golden signer")).issuer_name(mid.subject)
        .public_key(leaf_key.public_key()).serial_number(2)
        .not_valid_before(now + datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(mid_key, hashes.SHA384())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (HERE / "root.pem").write_bytes(root.public_bytes(pem))
    (tmp / "mid.pem").write_bytes(mid.public_bytes(pem))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "leaf.key").write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp / "leaf.key", tmp / "leaf.pem", tmp / "mid.pem"


def main() -> None:
    model = HERE / "model"
    if not model.exists():
        make_model(model)
    if (HERE / "signer.pub.pem").exists() or (HERE / "root.pem").exists():
        sys.exit("golden keys exist and their private halves are gone: extend this script to add new goldens")
    ours, theirs = f"cairn-{version('cairn')}", f"model_signing-{version('model_signing')}"
    tool = [sys.executable, "-m", "model_signing"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        private, public = write_keypair(tmp / "signer")
        (HERE / "signer.pub.pem").write_bytes(public.read_bytes())
        sign(model, key=private, signature=HERE / f"{ours}-files.sig")
        sign(model, key=private, signature=HERE / f"{ours}-shards.sig", method="shards", shard_size=128)
        subprocess.run([*tool, "sign", "key", str(model), "--private_key", str(private),
                        "--signature", str(HERE / f"{theirs}.sig")], check=True)  # fmt: skip
        leaf_key, leaf, mid = make_pki(tmp)
        sign(model, key=leaf_key, certificate=leaf, chain=[mid], signature=HERE / f"{ours}-certificate.sig")
        subprocess.run([*tool, "sign", "certificate", str(model), "--private_key", str(leaf_key),
                        "--signing_certificate", str(leaf), "--certificate_chain", str(mid),
                        "--signature", str(HERE / f"{theirs}-certificate.sig")], check=True)  # fmt: skip


if __name__ == "__main__":
    main()
