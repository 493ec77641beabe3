"""The public names of the signing API: what ``cairn.security`` and its signing subpackage export."""

from __future__ import annotations

import cairn.security
import cairn.security.signing as signing
from cairn.errors import CairnError


def test_security_package_exports_sign_and_verify() -> None:
    assert cairn.security.__all__ == ["sign", "verify"]
    assert cairn.security.sign is signing.sign and cairn.security.verify is signing.verify


def test_every_exported_name_exists_and_errors_are_cairn_errors() -> None:
    for name in signing.__all__:
        obj = getattr(signing, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, CairnError), name
            assert obj.code not in ("error", ""), name  # each has its own machine-readable code
    codes = [getattr(signing, n).code for n in signing.__all__ if n.endswith("Error")]
    assert len(codes) == len(set(codes))
