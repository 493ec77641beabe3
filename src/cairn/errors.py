"""The one exception hierarchy of cairn.

Every error a user can cause is a subclass of :class:`CairnError`. Exceptions carry data (paths, expected
and actual values) as attributes, not only a message, so that the CLI can render them, the hub can map them
to its JSON error shape, and tests can assert on what went wrong.

::

    CairnError
    ├── UsageError                  bad arguments to a library call or command
    ├── NotFoundError               a checkpoint, file, repo or revision that does not exist
    ├── ConflictError               a name already taken, a ref that moved under us
    ├── PermissionDeniedError       the caller may not do this
    ├── FormatError                 bytes that are not what they claim to be (path, detail)
    │   ├── UnsupportedFormatError  a format cairn recognises but cannot handle, or cannot recognise
    │   └── LimitExceededError      a size or count over a parser's limit (checked before allocating)
    ├── IntegrityError              content that does not match its recorded hash or size
    ├── CheckpointError             the checkpoint library
    │   ├── StateMismatchError      saved state does not fit the object it is loaded into
    │   ├── UnsupportedStateError   state that cairn will not serialise (it never pickles)
    │   └── BackgroundSaveError     an asynchronous save failed; raised on the next call
    └── UnsafeContentError          content refused because running or loading it could execute code

Subpackages may add subclasses of these; they never raise bare ``ValueError`` for input a user controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BackgroundSaveError",
    "CairnError",
    "CheckpointError",
    "ConflictError",
    "FormatError",
    "IntegrityError",
    "LimitExceededError",
    "Mismatch",
    "NotFoundError",
    "PermissionDeniedError",
    "StateMismatchError",
    "UnsafeContentError",
    "UnsupportedFormatError",
    "UnsupportedStateError",
    "UsageError",
]


class CairnError(Exception):
    """Base of every error cairn raises on purpose."""

    #: a short, stable, machine-readable name for the JSON error shape (``{"error": {"code": ...}}``)
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """The error as JSON-ready data: code, message and the subclass's own fields."""
        out: dict[str, object] = {"code": self.code, "message": self.message}
        for key, value in vars(self).items():
            if key in {"message", "args"} or key.startswith("_"):
                continue
            out[key] = str(value) if isinstance(value, Path) else value
        return out


class UsageError(CairnError):
    code = "usage"


class NotFoundError(CairnError):
    code = "not_found"


class ConflictError(CairnError):
    code = "conflict"


class PermissionDeniedError(CairnError):
    code = "permission_denied"


class FormatError(CairnError):
    """Bytes that are not what they claim to be."""

    code = "bad_format"

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = None if path is None else str(path)
        self.detail = message


class UnsupportedFormatError(FormatError):
    code = "unsupported_format"


class LimitExceededError(FormatError):
    code = "limit_exceeded"


class IntegrityError(CairnError):
    """Content whose hash or size differs from what was recorded for it."""

    code = "integrity"

    def __init__(self, path: str | Path, *, what: str, expected: object, actual: object) -> None:
        super().__init__(f"{path}: {what} is {actual}, expected {expected}")
        self.path = str(path)
        self.what = what
        self.expected = expected
        self.actual = actual


class CheckpointError(CairnError):
    code = "checkpoint"


@dataclass(frozen=True)
class Mismatch:
    """One way in which saved state does not fit its target."""

    part: str  # "model", "optimizer", ... or an extra's name
    key: str
    kind: str  # "missing" | "unexpected" | "shape" | "dtype" | "structure"
    saved: str = ""
    target: str = ""

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"{self.part}: {self.key} is missing from the checkpoint"
        if self.kind == "unexpected":
            return f"{self.part}: {self.key} is in the checkpoint but not in the target"
        return f"{self.part}: {self.key} {self.kind} differs: saved {self.saved}, target {self.target}"


class StateMismatchError(CheckpointError):
    """Saved state does not fit the object it is being loaded into. Nothing was applied."""

    code = "state_mismatch"

    def __init__(self, mismatches: Sequence[Mismatch]) -> None:
        shown = "; ".join(str(m) for m in mismatches[:10])
        more = f" (and {len(mismatches) - 10} more)" if len(mismatches) > 10 else ""
        super().__init__(f"checkpoint does not fit the target: {shown}{more}")
        self.mismatches = list(mismatches)

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["mismatches"] = [vars(m) for m in self.mismatches]
        return out


class UnsupportedStateError(CheckpointError):
    code = "unsupported_state"

    def __init__(self, path: str, type_name: str) -> None:
        super().__init__(
            f"cannot save {path!r} of type {type_name}: cairn stores tensors, arrays, numbers, strings, "
            "bytes, None and containers of them, and never pickles"
        )
        self.key = path
        self.type_name = type_name


class BackgroundSaveError(CheckpointError):
    code = "background_save_failed"

    def __init__(self, step: int | None, cause: BaseException) -> None:
        super().__init__(f"asynchronous save of step {step} failed: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = repr(cause)


class UnsafeContentError(CairnError):
    code = "unsafe_content"
