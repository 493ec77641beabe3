"""Signature check of a pulled snapshot: if it holds ``model.sig``, verify it with
:mod:`cairn.security.signing` against the publisher keys and/or trusted roots the caller gives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["SIGNATURE_NAME", "verify_snapshot"]

SIGNATURE_NAME = "model.sig"


def verify_snapshot(
    directory: Path, *, keys: Sequence[str | Path] = (), trusted: Sequence[str | Path] = ()
) -> Any:
    """The :class:`~cairn.security.signing.VerificationResult` of ``directory``'s ``model.sig``, or
    ``None`` when there is none. Raises the signing package's errors when the signature is refused."""
    from cairn.security.signing import verify

    if not (directory / SIGNATURE_NAME).is_file():
        return None
    return verify(directory, key=list(keys) or None, trusted=list(trusted))
