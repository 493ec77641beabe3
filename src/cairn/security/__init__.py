"""Security of checkpoints: signing and verification (and, merged from another branch, scanning).

``sign`` and ``verify`` work on model directories in the OpenSSF Model Signing format; see
:mod:`cairn.security.signing`. They need the ``trust`` extra (``cryptography``), which is imported when
this package is imported, not by ``import cairn``.
"""

from __future__ import annotations

from cairn.security.signing import sign, verify

__all__ = ["sign", "verify"]
