"""Security: find malicious model files before anyone loads them, and sign and verify model directories.

``scan(paths) -> ScanReport`` reads every file by its content (pickles of every protocol, PyTorch zip and
legacy files, joblib, NumPy, Keras, ONNX, GGUF, safetensors, and zip/tar/compressed archives nested in any
way), never executes anything in them, and returns findings (each with a severity, the file and member, the
construct and why it matters), scanner errors (could not scan: never clean) and skipped files (not a model
format) as three separate lists. Pickles are judged by an allowlist over a symbolic walk of their opcodes
(:mod:`cairn.format.pickle_vm`); archives are read the way the loaders read them.

``sign`` and ``verify`` work on model directories in the OpenSSF Model Signing format; see
:mod:`cairn.security.signing`. They need the ``trust`` extra (``cryptography``), imported on first use.
"""

from __future__ import annotations

from typing import Any

from cairn.security.pickle_rules import SAFE_GLOBALS, classify_global
from cairn.security.report import Finding, ScanError, ScanReport, Severity, Skipped
from cairn.security.scanner import scan, scan_bytes

__all__ = [
    "SAFE_GLOBALS",
    "Finding",
    "ScanError",
    "ScanReport",
    "Severity",
    "Skipped",
    "classify_global",
    "scan",
    "scan_bytes",
    "sign",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name in {"sign", "verify"}:
        from cairn.security import signing

        return getattr(signing, name)
    raise AttributeError(f"module 'cairn.security' has no attribute {name!r}")
