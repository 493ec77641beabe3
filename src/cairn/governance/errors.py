"""Typed errors of :mod:`cairn.governance`, all subclasses of the project hierarchy in :mod:`cairn.errors`.

::

    FormatError
    ├── LicenseDataError     the license knowledge base (a data file) is malformed
    └── CardError            a model card's front matter is malformed (carries the line number)
        └── CardLimitError   ... or over a size, depth or node limit (also a LimitExceededError)
    NotFoundError
    └── ParentNotFoundError  a declared parent model cannot be resolved
"""

from __future__ import annotations

from pathlib import Path

from cairn.errors import FormatError, LimitExceededError, NotFoundError

__all__ = ["CardError", "CardLimitError", "LicenseDataError", "ParentNotFoundError"]


class LicenseDataError(FormatError):
    code = "license_data"

    def __init__(self, message: str, *, entry: str | None = None) -> None:
        super().__init__(f"license {entry!r}: {message}" if entry else message)
        self.entry = entry


class CardError(FormatError):
    """A model card that cannot be read; ``line`` is 1-based in the README (None when unknown)."""

    code = "bad_model_card"

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message, path=path)
        self.line = line
        self.reason = message


class CardLimitError(CardError, LimitExceededError):
    code = "model_card_limit"


class ParentNotFoundError(NotFoundError):
    code = "parent_not_found"

    def __init__(self, ref: str, *, child: str, reason: str | None = None) -> None:
        why = f": {reason}" if reason else ""
        super().__init__(f"parent model {ref!r} of {child} cannot be found{why}")
        self.ref = ref
        self.child = child
        self.reason = reason
