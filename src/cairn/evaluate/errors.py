"""Typed errors of the fairness evaluation: every bad table, label, group or adapter input ends here.

::

    UsageError
    └── EvaluationError              evaluation input that cannot be evaluated (base of the rest)
        ├── MissingColumnError       a named column is not in the table (column, available)
        ├── MissingValueError        NaN / empty cells in a column that must be complete (column, rows)
        ├── NonBinaryLabelError      labels or predictions that are not two classes (column, values)
        ├── GroupError               fewer than two groups, or an empty group name (feature, groups)
        ├── LengthMismatchError      arrays that must line up do not (what, expected, actual)
        └── AdapterError             a model or predictions source that cannot give predictions (detail)
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn.errors import UsageError

__all__ = [
    "AdapterError",
    "EvaluationError",
    "GroupError",
    "LengthMismatchError",
    "MissingColumnError",
    "MissingValueError",
    "NonBinaryLabelError",
]


class EvaluationError(UsageError):
    """Input to a fairness evaluation that cannot be evaluated."""

    code = "evaluation"


class MissingColumnError(EvaluationError):
    code = "missing_column"

    def __init__(self, column: str, available: Sequence[str], *, source: str = "data") -> None:
        shown = ", ".join(list(available)[:20])
        super().__init__(f"{source} has no column {column!r} (columns: {shown})")
        self.column = column
        self.available = list(available)
        self.source = source


class MissingValueError(EvaluationError):
    code = "missing_value"

    def __init__(self, column: str, rows: Sequence[int]) -> None:
        first = ", ".join(str(r) for r in list(rows)[:10])
        super().__init__(f"column {column!r} has {len(rows)} missing value(s) (NaN or empty), rows {first}")
        self.column = column
        self.rows = [int(r) for r in rows]


class NonBinaryLabelError(EvaluationError):
    code = "non_binary"

    def __init__(self, column: str, values: Sequence[object], *, hint: str = "") -> None:
        shown = ", ".join(repr(v) for v in list(values)[:10])
        super().__init__(f"column {column!r} must hold two classes (0/1), found {shown}{hint}")
        self.column = column
        self.values = [str(v) for v in values]


class GroupError(EvaluationError):
    code = "bad_groups"

    def __init__(self, feature: str, groups: Sequence[str], detail: str) -> None:
        super().__init__(f"sensitive feature {feature!r}: {detail}")
        self.feature = feature
        self.groups = list(groups)
        self.detail = detail


class LengthMismatchError(EvaluationError):
    code = "length_mismatch"

    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(f"{what}: expected {expected} rows, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class AdapterError(EvaluationError):
    code = "adapter"

    def __init__(self, detail: str, *, source: str = "") -> None:
        super().__init__(f"{source}: {detail}" if source else detail)
        self.detail = detail
        self.source = source
