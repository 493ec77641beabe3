"""Evaluation data: read a CSV or Parquet table within limits and validate labels, groups and predictions.

Everything that enters a fairness evaluation passes through here, so the metric code can assume: binary
0/1 integer labels and predictions of equal length, and sensitive features as non-empty strings with at
least two groups per feature. Each violation raises its own :mod:`cairn.evaluate.errors` type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cairn.errors import LimitExceededError, NotFoundError, UnsupportedFormatError
from cairn.evaluate.errors import (
    GroupError,
    LengthMismatchError,
    MissingColumnError,
    MissingValueError,
    NonBinaryLabelError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_GROUPS",
    "MAX_TABLE_BYTES",
    "binary",
    "load_table",
    "require_columns",
    "sensitive_frame",
]

#: the largest data file read into memory (checked on the file size before reading)
MAX_TABLE_BYTES = 1 << 30
#: the most (intersectional) groups one evaluation compares; more is usually an identifier column
MAX_GROUPS = 1000

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


def load_table(path: str | Path, *, max_bytes: int = MAX_TABLE_BYTES) -> pd.DataFrame:
    """Read ``path`` (``.csv`` or ``.parquet``) as a DataFrame after checking its size."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"data file {p} does not exist")
    size = p.stat().st_size
    if size > max_bytes:
        raise LimitExceededError(f"data file is {size} bytes, over the limit of {max_bytes}", path=p)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            # strings stay strings: group names such as "01" must not become numbers
            frame = pd.read_csv(p, dtype=str, keep_default_na=True)
        elif suffix in {".parquet", ".pq"}:
            _check_parquet_size(p, max_bytes)
            frame = pd.read_parquet(p)
        else:
            raise UnsupportedFormatError("data must be a .csv or .parquet file", path=p)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as err:
        raise UnsupportedFormatError(f"cannot read table: {err}", path=p) from err
    except Exception as err:  # pyarrow raises its own ArrowInvalid family for corrupt parquet
        if type(err).__module__.startswith("pyarrow"):
            raise UnsupportedFormatError(f"cannot read parquet: {err}", path=p) from err
        raise
    if len(frame) == 0:
        raise UnsupportedFormatError("table has no rows", path=p)
    return frame


def _check_parquet_size(path: Path, max_bytes: int) -> None:
    """Refuse a parquet file whose row groups decompress to more than ``max_bytes`` (read from its footer)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    encoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    # run-length and dictionary encoding hide the in-memory size: count at least 8 bytes per cell
    total = max(encoded, meta.num_rows * meta.num_columns * 8)
    if total > max_bytes:
        raise LimitExceededError(
            f"parquet data is {total} bytes uncompressed, over the limit of {max_bytes}", path=path
        )


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, source: str = "data") -> None:
    """Raise :class:`MissingColumnError` for the first of ``columns`` not in ``frame``."""
    available = [str(c) for c in frame.columns]
    for column in columns:
        if column not in available:
            raise MissingColumnError(column, available, source=source)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _missing_rows(values: Sequence[object]) -> list[int]:
    return [i for i, v in enumerate(values) if _is_missing(v)]


def _binary_numeric(raw: np.ndarray, column: str) -> np.ndarray | None:
    """Vectorised path for numeric arrays; None when the values are not all 0/1 (the slow path explains)."""
    if raw.dtype.kind == "f":
        nan = np.flatnonzero(np.isnan(raw))
        if len(nan):
            raise MissingValueError(column, nan.tolist())
    ones: np.ndarray = np.asarray(raw == 1)
    if not np.all(ones | (raw == 0)):
        return None
    return ones.astype(np.int8)


def binary(values: Any, *, column: str, pos_label: object | None = None) -> np.ndarray:
    """``values`` as an int8 0/1 array, or a typed error saying why they are not binary.

    Accepted without ``pos_label``: 0/1 numbers, booleans, and the strings 0/1/true/false/yes/no.
    With ``pos_label``: that value is 1, and exactly one other value is 0.
    """
    raw = np.asarray(values)
    if pos_label is None and raw.dtype.kind in "biuf":
        fast = _binary_numeric(raw.ravel(), column)
        if fast is not None:
            return fast
    items = list(np.asarray(values, dtype=object).ravel())
    missing = _missing_rows(items)
    if missing:
        raise MissingValueError(column, missing)
    if pos_label is not None:
        pos = str(pos_label)
        as_text = [str(v) for v in items]
        others = sorted({v for v in as_text if v != pos})
        if len(others) > 1:
            raise NonBinaryLabelError(column, sorted(set(as_text)), hint=f" (positive label {pos!r})")
        return np.array([1 if v == pos else 0 for v in as_text], dtype=np.int8)
    out = np.empty(len(items), dtype=np.int8)
    bad: set[str] = set()
    for i, v in enumerate(items):
        if isinstance(v, bool | np.bool_):
            out[i] = int(v)
            continue
        text = str(v).strip().lower()
        if text in _TRUE:
            out[i] = 1
        elif text in _FALSE:
            out[i] = 0
        else:
            bad.add(str(v))
    if bad:
        values_seen = sorted(bad | {str(v) for v in items[:50]})
        raise NonBinaryLabelError(column, values_seen, hint="; pass a positive label to binarise")
    return out


def sensitive_frame(
    features: Mapping[str, Any] | pd.DataFrame | pd.Series | Sequence[object] | np.ndarray,
    *,
    rows: int,
) -> pd.DataFrame:
    """Sensitive features as a DataFrame of strings, one column per feature, validated.

    Each feature needs ``rows`` values, none missing or empty, and at least two distinct groups.
    """
    import pandas as pd

    if isinstance(features, pd.DataFrame):
        frame = features.copy()
    elif isinstance(features, pd.Series):
        frame = features.to_frame(name=str(features.name) if features.name is not None else "sensitive")
    elif isinstance(features, Mapping):
        frame = pd.DataFrame({str(k): list(np.asarray(v, dtype=object).ravel()) for k, v in features.items()})
    else:
        frame = pd.DataFrame({"sensitive": list(np.asarray(features, dtype=object).ravel())})
    if frame.shape[1] == 0:
        raise GroupError("", [], "no sensitive feature given")
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) != rows:
        raise LengthMismatchError("sensitive features", rows, len(frame))
    out = pd.DataFrame(index=range(rows))
    for column in frame.columns:
        items = list(frame[column].to_numpy(dtype=object))
        missing = _missing_rows(items)
        if missing:
            raise MissingValueError(column, missing)
        texts = [str(v) for v in items]
        groups = sorted(set(texts))
        if len(groups) < 2:
            raise GroupError(column, groups, "needs at least two groups to compare, found " + repr(groups))
        out[column] = texts
    n_groups = len(out.drop_duplicates())
    if n_groups > MAX_GROUPS:
        raise LimitExceededError(
            f"sensitive features {', '.join(out.columns)} form {n_groups} groups, over the limit of {MAX_GROUPS}"
        )
    return out
